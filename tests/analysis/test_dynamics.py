"""Analyses over training on a hand-made trajectory whose correlations with the final step,
and so its settling steps, are known."""

import json

import numpy as np
import pytest
import xarray as xr

from gradnap.analysis import representation_power
from gradnap.analysis.dynamics import (
    at_step,
    correlation_with_final,
    settling,
    settling_index,
    silhouette_over_training,
)

STEPS = [10, 100, 1000, 5000]
F = np.array([1.0, -1.0, 0.0, 0.0])  # the final profile (zero mean)
ORTH = np.array([0.0, 0.0, 1.0, -1.0])  # orthogonal to F, same norm
# r(F + c ORTH, F) = 1 / sqrt(1 + c^2)
# wanted correlation with the final step per group and step (NaN: group absent there)
R = {
    "phoneme:A": [0.5, 0.95, 0.8, 1.0],  # dips below 0.9 at 1000: settles only at 5000
    "phoneme:B": [0.2, 0.95, 0.99, 1.0],  # settles at 100
    "phoneme:C": [np.nan, 0.92, 0.97, 1.0],  # absent at 10, settles at 100
    "phoneme:D": [0.99, 0.99, 0.99, np.nan],  # absent at the end: never settles
    "phoneme:E": [-1.0, 1.0, 1.0, 1.0],  # anti-correlated at first; settles at 100
}
SETTLES = {"phoneme:A": 5000, "phoneme:B": 100, "phoneme:C": 100, "phoneme:D": np.nan,
           "phoneme:E": 100}  # fmt: skip


def profile(r):
    if np.isnan(r):
        return np.full(4, np.nan)
    if r < 0:
        return -F
    return F + np.sqrt(1 / r**2 - 1) * ORTH


def hand_made() -> xr.DataTree:
    groups = sorted(R)
    g = np.array([[profile(R[k][s]) for k in groups] for s in range(len(STEPS))])
    g = g.reshape(len(STEPS), len(groups), 2, 2)  # (step, group, neuron, offset)
    count = np.where(np.isnan(g).any((2, 3)), 0, 20)
    root = xr.Dataset(
        {"count": (("step", "group"), count), "n_events": ("step", count.sum(1))},
        coords={
            "group": groups,
            "step": STEPS,
            "dev_cer": ("step", [0.9, 0.5, 0.3, 0.2]),
            "epoch": ("step", [0.01, 0.1, 1.0, 5.0]),
        },
        attrs={"config": json.dumps({"trajectory": {"events": "own"}})},
    )
    layer = xr.Dataset(
        {
            "gradnap": (("step", "group", "neuron", "offset"), g),
            "count": (("step", "group"), count),
        },
        coords={"neuron": [0, 1], "offset": [0, 1], "offset_ms": ("offset", [0.0, 10.0])},
    )
    return xr.DataTree.from_dict({"/": root, "/conv1": layer, "/conv2": -1 * layer})


def test_correlations_and_settling_steps_are_the_known_ones():
    traj = hand_made()
    r = correlation_with_final(traj)
    for group, want in R.items():
        final_missing = np.isnan(want[-1])
        expect = [np.nan] * 4 if final_missing else want
        np.testing.assert_allclose(r.sel(group=group, layer="conv1"), expect, atol=1e-12)
    s = settling(traj, threshold=0.9)
    for group, step in SETTLES.items():
        for layer in ("conv1", "conv2"):
            got = float(s["settling_step"].sel(group=group, layer=layer))
            assert (np.isnan(got) and np.isnan(step)) or got == step, (group, layer, got)
    assert list(s["dev_cer"].values) == [0.9, 0.5, 0.3, 0.2]
    # a lower threshold moves A's settling step earlier (its dip of 0.8 now passes)
    assert float(settling(traj, 0.75)["settling_step"].sel(group="phoneme:A", layer="conv1")) == 100


def test_settling_index():
    r = np.array([[0.95, 0.5, 0.95, 0.96], [0.95, 0.95, 0.95, 0.95], [0.9, 0.9, 0.9, 0.2]])
    assert settling_index(r, 0.9).tolist() == [2, 0, -1]
    assert settling_index(np.array([np.nan, 0.99]), 0.9).tolist() == 1


def test_silhouette_over_training_is_representation_power_per_step():
    rng = np.random.default_rng(0)
    groups = [f"phoneme:{p}" for p in "ABCDEFGH"]
    centres = np.array([[5.0, 0, 0, 0], [0, 0, 5.0, 0]])
    final = centres[np.arange(8) % 2] + 0.1 * rng.standard_normal((8, 4))  # two clusters
    start = rng.standard_normal((8, 4))  # no structure
    g = np.stack([start, 0.5 * (start + final), final]).reshape(3, 8, 2, 2)
    count = np.full((3, 8), 30)
    root = xr.Dataset(
        {"count": (("step", "group"), count)},
        coords={"group": groups, "step": [1, 10, 100], "dev_cer": ("step", [0.9, 0.6, 0.3])},
    )
    layer = xr.Dataset({"gradnap": (("step", "group", "neuron", "offset"), g)})
    traj = xr.DataTree.from_dict({"/": root, "/conv1": layer})
    sil = silhouette_over_training(traj, groupings=("phoneme",))
    m = sil["mean_silhouette"].sel(grouping="phoneme", layer="conv1").values
    assert m[-1] > 0.8 and m[-1] > m[0]
    for k in range(3):
        alone = representation_power(at_step(traj, k), ("phoneme",))
        np.testing.assert_allclose(
            sil["silhouette"].isel(step=k).values, alone["silhouette"].values
        )
    assert list(sil["dev_cer"].values) == [0.9, 0.6, 0.3]


def test_needs_a_step_dimension():
    traj = hand_made().isel(step=-1)
    with pytest.raises((KeyError, ValueError)):
        settling(traj)
