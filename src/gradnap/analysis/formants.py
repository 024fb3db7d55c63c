"""Formants read off input-layer profiles (the paper's discussion of its Figures 2 and 3).

The paper reads vowel formants off the input-layer GradNAP by eye: "/AA/ and /AE/ share a
high intensity formant at around 700 Hz. A second formant is identified at around 1200 Hz
and 1900 Hz" (Section 4, Figure 2), and the optimal input of /AE/-responsive neurons
"shows high intensities for frequencies around 700 Hz and 1900 Hz" (Figure 3). METHOD.md
defines the profile being read (the input layer's GradNAP: neurons are mel bins, time is
the offset from the event's alignment point). :func:`formants` does the reading by rule:

1. per group, average the profile over offsets within ``window_ms`` of the alignment
   point (default +-30 ms) -> one value per mel bin **[choice]**;
2. smooth across mel bins (Gaussian, ``smooth_bins`` bins) **[choice]**;
3. find its local maxima (scipy ``find_peaks``) with a prominence of at least
   ``prominence`` x (max - min) of the smoothed curve **[choice]**, at or above ``fmin``
   (skips the voicing bar and F0 harmonics) **[choice]**;
4. F1 and F2 are the two lowest such peaks, in Hz, at their mel bins' centre
   frequencies (the layer's ``frequency`` coordinate, or ``frequencies=``).

Textbook values to set them beside: :data:`HILLENBRAND_1995` and
:data:`PETERSON_BARNEY_1952` (ARPAbet keys, men's and women's averages, Hz).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

# Hillenbrand, Getty, Clark & Wheeler (1995), "Acoustic characteristics of American English
# vowels", JASA 97(5):3099-3111, Table V: average F1, F2 (Hz) at steady state, /hVd/ words,
# 45 men and 48 women. {vowel: {"men": (F1, F2), "women": (F1, F2)}}
HILLENBRAND_1995 = {
    "IY": {"men": (342, 2322), "women": (437, 2761)},  # heed
    "IH": {"men": (427, 2034), "women": (483, 2365)},  # hid
    "EY": {"men": (476, 2089), "women": (536, 2530)},  # hayed
    "EH": {"men": (580, 1799), "women": (731, 2058)},  # head
    "AE": {"men": (588, 1952), "women": (669, 2349)},  # had
    "AA": {"men": (768, 1333), "women": (936, 1551)},  # hod
    "AO": {"men": (652, 997), "women": (781, 1136)},  # hawed
    "OW": {"men": (497, 910), "women": (555, 1035)},  # hoed
    "UH": {"men": (469, 1122), "women": (519, 1225)},  # hood
    "UW": {"men": (378, 997), "women": (459, 1105)},  # who'd
    "AH": {"men": (623, 1200), "women": (753, 1426)},  # hud
    "ER": {"men": (474, 1379), "women": (523, 1588)},  # heard
}

# Peterson & Barney (1952), "Control methods used in a study of the vowels", JASA
# 24(2):175-184, Table II: average F1, F2 (Hz) of 33 men and 28 women, /hVd/ words.
PETERSON_BARNEY_1952 = {
    "IY": {"men": (270, 2290), "women": (310, 2790)},
    "IH": {"men": (390, 1990), "women": (430, 2480)},
    "EH": {"men": (530, 1840), "women": (610, 2330)},
    "AE": {"men": (660, 1720), "women": (860, 2050)},
    "AH": {"men": (520, 1190), "women": (760, 1400)},
    "AA": {"men": (730, 1090), "women": (850, 1220)},
    "AO": {"men": (570, 840), "women": (590, 920)},
    "UH": {"men": (440, 1020), "women": (470, 1160)},
    "UW": {"men": (300, 870), "women": (370, 950)},
    "ER": {"men": (490, 1350), "women": (500, 1640)},
}


def spectral_peaks(
    curve: np.ndarray, prominence: float = 0.1, smooth_bins: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed ``curve`` ``(bins,)`` and the indices of its prominent local maxima
    (prominence >= ``prominence`` x its range), lowest bin first."""
    s = np.asarray(curve, dtype=np.float64)
    if smooth_bins > 0:
        s = gaussian_filter1d(s, smooth_bins, mode="nearest")
    span = float(s.max() - s.min())
    if not np.isfinite(span) or span == 0.0:
        return s, np.zeros(0, dtype=int)
    peaks, _ = find_peaks(s, prominence=prominence * span)
    return s, np.sort(peaks)


def formants(
    layer: xr.Dataset | xr.DataTree,
    groups=None,
    *,
    variable: str = "gradnap",
    window_ms: tuple[float, float] = (-30.0, 30.0),
    smooth_bins: float = 1.0,
    prominence: float = 0.1,
    fmin: float = 200.0,
    frequencies=None,
) -> xr.Dataset:
    """F1 and F2 (Hz) of each group's input-layer profile.

    ``layer``: the input layer of a result (``tree["input"].to_dataset()``; a whole tree
    is read at its ``input`` node), ``variable`` ``(group, neuron, offset)`` over mel bins.
    ``frequencies``: ``(neuron,)`` mel-bin centres in Hz, when the layer has no
    ``frequency`` coordinate. ``groups``: names to read (default: all).

    Returns an ``xarray.Dataset`` over ``group``: ``F1``, ``F2`` (Hz; NaN where fewer
    prominent peaks), ``n_peaks``, ``peaks`` ``(group, peak)`` (Hz of the first 4, NaN
    padded), ``spectrum`` ``(group, frequency)`` (the smoothed window mean) and ``count``.

    >>> f = formants(tree["input"].to_dataset(), ["phoneme:AA"])  # doctest: +SKIP
    >>> float(f["F1"].sel(group="phoneme:AA"))  # doctest: +SKIP
    745.0
    """
    if isinstance(layer, xr.DataTree):
        if "input" not in layer.children:
            raise KeyError("formants: this result has no 'input' layer")
        layer = layer["input"].to_dataset()
    if variable not in layer:
        raise KeyError(f"formants: the layer has no {variable!r} (it has {list(layer.data_vars)})")
    if frequencies is None:
        if "frequency" not in layer.coords:
            raise ValueError(
                "formants: the layer has no 'frequency' coordinate (not a mel input layer?); "
                "pass frequencies= (mel-bin centres in Hz)"
            )
        frequencies = layer["frequency"].values
    freq = np.asarray(frequencies, dtype=np.float64)
    prof = layer[variable]
    if freq.shape != (prof.sizes["neuron"],):
        raise ValueError(f"formants: {freq.shape[0]} frequencies for {prof.sizes['neuron']} bins")
    names = [str(g) for g in (layer["group"].values if groups is None else groups)]
    missing = [g for g in names if g not in layer["group"].values]
    if missing:
        raise KeyError(f"formants: no group {missing[0]!r} in this result")
    off = layer["offset_ms"].values
    sel = (off >= window_ms[0]) & (off <= window_ms[1])
    if not sel.any():
        raise ValueError(
            f"formants: no offsets within {window_ms} ms (the crop: {off.min()}..{off.max()} ms)"
        )
    curves = prof.sel(group=names).transpose("group", "neuron", "offset").values[:, :, sel]
    curves = curves.mean(-1)
    n_max = 4
    f12 = np.full((len(names), 2), np.nan)
    peaks = np.full((len(names), n_max), np.nan)
    n_peaks = np.zeros(len(names), dtype=int)
    spectra = np.empty_like(curves)
    for i, curve in enumerate(curves):
        spectra[i], idx = spectral_peaks(curve, prominence, smooth_bins)
        hz = freq[idx][freq[idx] >= fmin]
        n_peaks[i] = len(hz)
        peaks[i, : min(n_max, len(hz))] = hz[:n_max]
        f12[i, : min(2, len(hz))] = hz[:2]
    hz_attrs = {"units": "Hz"}
    count = layer["count"].sel(group=names).values if "count" in layer else np.full(len(names), -1)
    return xr.Dataset(
        {
            "F1": ("group", f12[:, 0], {**hz_attrs, "long_name": "lowest prominent peak"}),
            "F2": ("group", f12[:, 1], {**hz_attrs, "long_name": "second prominent peak"}),
            "peaks": (("group", "peak"), peaks, hz_attrs),
            "n_peaks": ("group", n_peaks),
            "spectrum": (("group", "frequency"), spectra),
            "count": ("group", count),
        },
        coords={"group": names, "frequency": ("frequency", freq, hz_attrs)},
        attrs={
            "variable": variable,
            "window_ms": list(window_ms),
            "smooth_bins": smooth_bins,
            "prominence": prominence,
            "fmin": fmin,
        },
    )
