"""Formants and Silhouette scores of profile results, as the README's Markdown tables.

Formants (:func:`gradnap.analysis.formants`): F1/F2 read off each vowel's input-layer
profile (mean over ``--window`` ms around the alignment point, smoothed across mel bins,
the two lowest prominent peaks), beside the textbook averages of men and women
(Hillenbrand et al. 1995; Peterson & Barney 1952 with ``--reference pb``). Silhouette
(:func:`gradnap.analysis.representation_power`): the mean Silhouette score per layer of
each grouping the result has (token, phoneme, grapheme), groups with >= ``--min-count``
events.

    python scripts/whisper_findings.py --formants build/whisper-synth.nc \\
        --silhouette build/whisper-synth.nc build/demo/profiles.nc
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from gradnap.analysis import representation_power
from gradnap.analysis.formants import HILLENBRAND_1995, PETERSON_BARNEY_1952, formants
from gradnap.profiling import load_profiles

REFERENCES = {
    "hillenbrand": ("Hillenbrand et al. 1995", HILLENBRAND_1995),
    "pb": ("Peterson & Barney 1952", PETERSON_BARNEY_1952),
}


def _frequencies(tree):
    """Mel-bin centres (Hz) of the input layer: its coordinate, or Whisper's bins for
    Whisper results written before token profiles carried the coordinate."""
    ds = tree["input"].to_dataset()
    if "frequency" in ds.coords:
        return None
    model = json.loads(tree.attrs.get("config", "{}")).get("model", {})
    if model.get("class") == "WhisperForConditionalGeneration" and ds.sizes["neuron"] == 80:
        from gradnap.decode.whisper import mel_frequencies

        return mel_frequencies()
    raise SystemExit("the input layer has no 'frequency' coordinate and is not Whisper's")


def _fmt(x) -> str:
    return "-" if not np.isfinite(x) else f"{x:.0f}"


def formant_table(path: str, args) -> None:
    name, table = REFERENCES[args.reference]
    tree = load_profiles(path)
    ds = tree["input"].to_dataset()
    have = [f"phoneme:{v}" for v in table if f"phoneme:{v}" in ds["group"].values]
    f = formants(
        ds,
        have,
        window_ms=args.window,
        smooth_bins=args.smooth,
        prominence=args.prominence,
        frequencies=_frequencies(tree),
    )
    print(
        f"\n{path}: input-layer {f.attrs['variable']}, mean over {args.window[0]:g}.."
        f"{args.window[1]:g} ms, smoothed {args.smooth:g} bin, prominence >= "
        f"{args.prominence:g} x range, F >= {f.attrs['fmin']:g} Hz; textbook: {name}\n"
    )
    print("| vowel | events | F1 | F2 | men F1 | men F2 | women F1 | women F2 | peaks (first 4) |")
    print("|---|---|---|---|---|---|---|---|---|")
    err = {"men": [], "women": []}
    for g in have:
        v = g.split(":", 1)[1]
        n = int(f["count"].sel(group=g))
        f1, f2 = float(f["F1"].sel(group=g)), float(f["F2"].sel(group=g))
        (m1, m2), (w1, w2) = table[v]["men"], table[v]["women"]
        peaks = ", ".join(_fmt(p) for p in f["peaks"].sel(group=g).values if np.isfinite(p))
        print(f"| {v} | {n} | {_fmt(f1)} | {_fmt(f2)} | {m1} | {m2} | {w1} | {w2} | {peaks} |")
        if n >= args.min_count:
            for who, (t1, t2) in (("men", (m1, m2)), ("women", (w1, w2))):
                err[who].append((f1 - t1, f2 - t2, (f1 - t1) / t1, (f2 - t2) / t2))
    for who, rows in err.items():
        if not rows:
            continue
        e = np.asarray(rows)
        d1, d2, p1, p2 = (np.nanmedian(np.abs(e[:, k])) for k in range(4))
        print(
            f"\nvowels with >= {args.min_count} events: {len(e)}; against {who}: median "
            f"|F1 - textbook| {d1:.0f} Hz ({100 * p1:.0f} %), |F2 - textbook| {d2:.0f} Hz "
            f"({100 * p2:.0f} %); F2 missing for {int(np.isnan(e[:, 1]).sum())}"
        )
    if len(err["men"]) >= 3:
        r1, r2 = _vowel_space_correlation(f, have, table, args.min_count)
        print(f"Pearson r over those vowels, measured vs men's textbook: F1 {r1:.2f}, F2 {r2:.2f}")


def _vowel_space_correlation(f, groups, table, min_count):
    keep = [g for g in groups if int(f["count"].sel(group=g)) >= min_count]
    meas = np.array([[float(f["F1"].sel(group=g)), float(f["F2"].sel(group=g))] for g in keep])
    ref = np.array([table[g.split(":", 1)[1]]["men"] for g in keep], dtype=float)
    out = []
    for k in range(2):
        ok = np.isfinite(meas[:, k])
        out.append(float(np.corrcoef(meas[ok, k], ref[ok, k])[0, 1]) if ok.sum() >= 3 else np.nan)
    return out


def silhouette_table(path: str, args) -> None:
    tree = load_profiles(path)
    present = set(str(g) for g in tree["grouping"].values)
    groupings = [g for g in ("grapheme", "phoneme", "token") if g in present]
    power = representation_power(tree, groupings=groupings, min_count=args.min_count)
    ns = {g: int(power["n_groups"].sel(grouping=g)) for g in groupings}
    print(
        f"\n{path}: mean Silhouette score over the 75..95th-percentile cuts (defined cuts "
        f"of 5), {power.attrs['variable']}, groups with >= {args.min_count} events: "
        + ", ".join(f"{g} {n}" for g, n in ns.items())
        + "\n"
    )
    print("| layer | " + " | ".join(groupings) + " |")
    print("|---|" + "---|" * len(groupings))
    for layer in power["layer"].values:
        cells = []
        for g in groupings:
            m = float(power["mean_silhouette"].sel(grouping=g, layer=layer))
            d = int(power["n_defined"].sel(grouping=g, layer=layer))
            cells.append("-" if not np.isfinite(m) else f"{m:.2f}" + ("" if d == 5 else f" ({d})"))
        print(f"| {layer} | " + " | ".join(cells) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--formants", nargs="*", default=[], metavar="RESULT")
    ap.add_argument("--silhouette", nargs="*", default=[], metavar="RESULT")
    ap.add_argument("--window", default="-30,30", help="offsets in ms: from,to")
    ap.add_argument("--smooth", type=float, default=1.0, help="Gaussian sigma in mel bins")
    ap.add_argument("--prominence", type=float, default=0.1)
    ap.add_argument("--reference", choices=sorted(REFERENCES), default="hillenbrand")
    ap.add_argument("--min-count", type=int, default=10)
    args = ap.parse_args()
    args.window = tuple(float(v) for v in args.window.split(","))
    for path in args.formants:
        formant_table(path, args)
    for path in args.silhouette:
        silhouette_table(path, args)


if __name__ == "__main__":
    main()
