"""Spectral peaks of input-layer profiles, as quoted in the README (formants read off).

For each phoneme group, the profile of the input layer (NAvAI, GradNAP, mean activation)
is averaged over time offsets in ``--window`` (ms) and its local maxima along frequency
(scipy ``find_peaks``, prominence >= 10 % of the largest magnitude) are printed in Hz,
with the split-half reliability of the group.

    python scripts/formant_peaks.py build/demo/profiles.nc [--phonemes AA,AE,IY,T]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.signal import find_peaks

from gradnap.profiling import load_profiles


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("result")
    ap.add_argument("--phonemes", default="AA,AE,IY,T")
    ap.add_argument("--window", default="0,250", help="offsets in ms: from,to")
    ap.add_argument("--peaks", type=int, default=4)
    args = ap.parse_args()
    lo, hi = (float(v) for v in args.window.split(","))
    ds = load_profiles(args.result)["input"].to_dataset()
    freq, off = ds["frequency"].values, ds["offset_ms"].values
    sel = (off >= lo) & (off <= hi)
    for ph in args.phonemes.split(","):
        group = f"phoneme:{ph}"
        if group not in ds["group"].values:
            print(f"{group}: not in the result")
            continue
        n = int(ds["count"].sel(group=group))
        r = float(ds["split_half_r"].sel(group=group)) if "split_half_r" in ds else np.nan
        for var in ("navai", "gradnap", "mean_activation"):
            prof = ds[var].sel(group=group).values[:, sel].mean(1)
            peaks, _ = find_peaks(prof, prominence=0.1 * np.abs(prof).max())
            top = sorted(sorted(peaks, key=lambda i: -prof[i])[: args.peaks])
            print(
                f"{group:12s} {var:16s} peaks (Hz): {[int(freq[i]) for i in top]}"
                f"  (n={n}, split-half r={r:.2f})"
            )


if __name__ == "__main__":
    main()
