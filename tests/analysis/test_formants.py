import numpy as np
import pytest
import xarray as xr

from gradnap.analysis.formants import (
    HILLENBRAND_1995,
    PETERSON_BARNEY_1952,
    formants,
    spectral_peaks,
)
from gradnap.audio.features import FeatureConfig

FREQ = FeatureConfig(n_mels=80, fmin=0.0, fmax=8000.0).mel_frequencies()  # Whisper's bins
OFFSETS = np.arange(-25, 25)  # 10 ms frames: -250..240 ms


def _bump(center_bin, width=1.5):
    return np.exp(-0.5 * ((np.arange(80) - center_bin) / width) ** 2)


def _layer(spectra, at_ms=(-30, 30), elsewhere=None, with_freq=True):
    """A hand-made input layer: each group's profile is ``spectrum`` at offsets within
    ``at_ms`` and ``elsewhere`` (another spectrum, or 0) outside them."""
    rng = np.random.default_rng(0)
    prof = np.zeros((len(spectra), 80, len(OFFSETS)))
    inside = (OFFSETS * 10 >= at_ms[0]) & (OFFSETS * 10 <= at_ms[1])
    for g, s in enumerate(spectra):
        prof[g][:, inside] = s[:, None]
        if elsewhere is not None:
            prof[g][:, ~inside] = elsewhere[:, None]
    prof += 0.01 * rng.standard_normal(prof.shape)
    coords = {
        "group": [f"phoneme:G{i}" for i in range(len(spectra))],
        "neuron": np.arange(80),
        "offset": OFFSETS,
        "offset_ms": ("offset", OFFSETS * 10.0),
    }
    if with_freq:
        coords["frequency"] = ("neuron", FREQ)
    return xr.Dataset(
        {
            "gradnap": (("group", "neuron", "offset"), prof),
            "count": ("group", np.arange(len(spectra)) + 10),
        },
        coords=coords,
    )


def test_bumps_at_known_mel_bins_give_their_frequencies_within_one_bin():
    # bins 14 (559 Hz), 33 (1316 Hz), 45 (2086 Hz); 10 (410 Hz), 46 (2168 Hz); a dip at 60
    a = _bump(14) + 0.8 * _bump(33) + 0.5 * _bump(45)
    b = 0.6 * _bump(10) + _bump(46) - 0.3 * _bump(60)
    # outside +-30 ms: a stronger peak at bin 25 (968 Hz) that must not be read
    ds = _layer([a, b], elsewhere=3.0 * _bump(25))
    f = formants(ds)
    assert list(f["group"].values) == ["phoneme:G0", "phoneme:G1"]
    spacing = np.diff(FREQ)
    for g, (b1, b2) in zip(f["group"].values, [(14, 33), (10, 46)]):
        f1, f2 = float(f["F1"].sel(group=g)), float(f["F2"].sel(group=g))
        assert abs(f1 - FREQ[b1]) <= spacing[b1]
        assert abs(f2 - FREQ[b2]) <= spacing[b2]
    assert float(f["peaks"].sel(group="phoneme:G0")[2]) == pytest.approx(FREQ[45], abs=spacing[45])
    assert f.attrs["window_ms"] == [-30.0, 30.0]
    assert f["count"].values.tolist() == [10, 11]


def test_window_is_what_is_read():
    ds = _layer([_bump(14) + _bump(33)], at_ms=(100, 200), elsewhere=_bump(20) + _bump(40))
    near = formants(ds)  # +-30 ms: only the "elsewhere" spectrum
    late = formants(ds, window_ms=(100, 200))
    assert abs(float(near["F1"][0]) - FREQ[20]) <= np.diff(FREQ)[20]
    assert abs(float(late["F1"][0]) - FREQ[14]) <= np.diff(FREQ)[14]
    assert abs(float(late["F2"][0]) - FREQ[33]) <= np.diff(FREQ)[33]


def test_peaks_below_fmin_and_minor_wiggles_are_not_formants():
    s = _bump(3) + 0.9 * _bump(20) + 0.02 * _bump(27, 0.7) + 0.7 * _bump(40)
    f = formants(_layer([s]), fmin=200.0)  # bin 3 is 149 Hz
    assert abs(float(f["F1"][0]) - FREQ[20]) <= np.diff(FREQ)[20]
    assert abs(float(f["F2"][0]) - FREQ[40]) <= np.diff(FREQ)[40]
    one = formants(_layer([_bump(20)]))
    assert int(one["n_peaks"][0]) == 1 and np.isnan(float(one["F2"][0]))


def test_spectral_peaks_of_a_flat_curve_is_empty():
    s, peaks = spectral_peaks(np.ones(80))
    assert peaks.size == 0 and s.shape == (80,)


def test_needs_frequencies_and_known_groups():
    ds = _layer([_bump(14) + _bump(33)], with_freq=False)
    with pytest.raises(ValueError, match="no 'frequency' coordinate"):
        formants(ds)
    f = formants(ds, frequencies=FREQ)
    assert abs(float(f["F2"][0]) - FREQ[33]) <= np.diff(FREQ)[33]
    with pytest.raises(KeyError, match="phoneme:ZZ"):
        formants(ds, ["phoneme:ZZ"], frequencies=FREQ)
    with pytest.raises(ValueError, match="3 frequencies for 80 bins"):
        formants(ds, frequencies=FREQ[:3])


def test_textbook_tables_are_plausible():
    for table in (HILLENBRAND_1995, PETERSON_BARNEY_1952):
        for vowel, by_sex in table.items():
            (m1, m2), (w1, w2) = by_sex["men"], by_sex["women"]
            assert 200 < m1 < m2 < 2500 and 200 < w1 < w2 < 3000, vowel
            assert w1 >= m1 and w2 >= m2, vowel  # women's vocal tracts are shorter
    assert HILLENBRAND_1995["IY"]["men"] == (342, 2322)
    assert PETERSON_BARNEY_1952["AA"]["men"] == (730, 1090)
