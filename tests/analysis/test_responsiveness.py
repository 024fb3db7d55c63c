"""Responsiveness r_n and the top neurons on hand-made profiles."""

import numpy as np
import pytest
import xarray as xr

from gradnap.analysis import responsiveness, top_neurons


def layer(values):
    values = np.asarray(values, dtype=float)
    return xr.Dataset(
        {"gradnap": (("group", "neuron", "offset"), values)},
        coords={
            "group": [f"g{i}" for i in range(len(values))],
            "neuron": np.arange(values.shape[1]) + 10,
        },
    )


def test_signs_and_magnitudes_by_hand():
    ds = layer([[[1, 2, -1], [-3, 1, 0], [0, 0, 0], [0.5, -0.5, 0]]])
    r = responsiveness(ds).sel(group="g0").values
    # sign of the sum times the sum of magnitudes: 2 -> +4, -2 -> -4, 0 -> 0, 0 -> sign(0)=0
    np.testing.assert_allclose(r, [4, -4, 0, 0])


def test_top_neurons_rank_by_magnitude_and_keep_signs():
    ds = layer([[[1, 0], [-5, 0], [2, 1], [0, 0.1], [0, -0.2], [4, 0]]])
    top = top_neurons(ds, "g0", k=3)
    assert top["neuron"].values.tolist() == [11, 15, 12]  # |-5| > |4| > |3|
    np.testing.assert_allclose(top.values, [-5, 4, 3])
    with pytest.raises(KeyError, match="nope"):
        top_neurons(ds, "nope")
