"""Representation power: percentile cuts, Silhouette scores, undefined cases."""

import json

import numpy as np
import pytest
import xarray as xr
from scipy.spatial.distance import pdist
from sklearn.metrics import silhouette_score

from gradnap.analysis import cluster_groups, representation_power


def test_thresholds_are_distance_percentiles():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 4))
    res = cluster_groups(x, [75, 90])
    d = pdist(x)
    np.testing.assert_allclose(res["threshold"], [np.percentile(d, 75), np.percentile(d, 90)])
    # complete linkage: no two points in one cluster are farther apart than the cut
    for t, labels in zip(res["threshold"], res["labels"]):
        for k in np.unique(labels):
            members = x[labels == k]
            if len(members) > 1:
                assert pdist(members).max() <= t + 1e-12


def test_two_well_separated_clusters_score_high():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 0.05, size=(5, 3))
    b = rng.normal(10, 0.05, size=(5, 3))
    x = np.vstack([a, b])
    res = cluster_groups(x, [75])
    labels = res["labels"][0]
    assert res["n_clusters"][0] == 2
    assert res["silhouette"][0] == pytest.approx(silhouette_score(x, labels))
    assert res["silhouette"][0] > 0.95


def test_undefined_cases_are_missing_not_zero():
    # 2 points: the one distance is every percentile, the cut keeps them together -> 1 cluster
    res = cluster_groups(np.array([[0.0], [1.0]]), [75, 95])
    assert res["n_clusters"] == [1, 1]
    assert all(np.isnan(res["silhouette"]))
    # equidistant points: every percentile equals the one distance -> one cluster
    res = cluster_groups(np.eye(4), [75, 80])
    assert res["n_clusters"] == [1, 1]
    assert all(np.isnan(res["silhouette"]))


def tree_of(profiles: dict, counts: dict):
    groups = list(profiles)
    values = np.stack([profiles[g] for g in groups])
    root = xr.Dataset({"count": ("group", [counts[g] for g in groups])}, coords={"group": groups})
    root["n_events"] = sum(counts.values())
    root.attrs["config"] = json.dumps({})
    layer = xr.Dataset(
        {
            "gradnap": (("group", "neuron", "offset"), values),
            "count": ("group", [counts[g] for g in groups]),
        },
        coords={"group": groups},
    )
    return xr.DataTree.from_dict({"/": root, "/conv1": layer})


def test_representation_power_table_and_left_out_groups():
    rng = np.random.default_rng(2)
    profiles, counts = {}, {}
    for i, p in enumerate(["AA", "AE", "IY", "T", "S", "sil", "ZH"]):
        centre = 0 if i % 2 else 5
        profiles[f"phoneme:{p}"] = centre + rng.normal(0, 0.1, size=(3, 2))
        counts[f"phoneme:{p}"] = 2 if p == "ZH" else 50
    for g in "abcdef":
        profiles[f"grapheme:{g}"] = rng.normal(size=(3, 2))
        counts[f"grapheme:{g}"] = 40
    power = representation_power(tree_of(profiles, counts), min_count=10)
    assert power["silhouette"].dims == ("grouping", "layer", "percentile")
    assert list(power["percentile"].values) == [75, 80, 85, 90, 95]
    assert int(power["n_groups"].sel(grouping="phoneme")) == 5  # sil and ZH left out
    assert "phoneme:ZH (2 events < 10)" in power.attrs["left_out"]
    assert "phoneme:sil (not speech)" in power.attrs["left_out"]
    sil = power["silhouette"].sel(grouping="phoneme", layer="conv1").values
    defined = ~np.isnan(sil)
    assert int(power["n_defined"].sel(grouping="phoneme", layer="conv1")) == defined.sum()
    if defined.any():
        assert float(
            power["mean_silhouette"].sel(grouping="phoneme", layer="conv1")
        ) == pytest.approx(sil[defined].mean())
    # the phonemes form two tight clusters; the random graphemes do not
    assert float(power["mean_silhouette"].sel(grouping="phoneme", layer="conv1")) > 0.8
