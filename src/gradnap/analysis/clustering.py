"""Representation power (METHOD.md "Representation power", the paper's Figure 4).

Per layer: the groups' flattened profiles, Euclidean distances, complete-linkage
clustering (scipy), cuts at the 75..95th percentiles of the pairwise distances, and the
Silhouette score of each cut (scikit-learn). A cut with one cluster, or with as many
clusters as groups, has no Silhouette score: it is reported as missing (NaN), not as 0.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist
from sklearn.metrics import silhouette_score

from gradnap.profiling.groupings import group_coords

PERCENTILES = (75, 80, 85, 90, 95)
NON_SPEECH = ("phoneme:sil", "phoneme:spn", "grapheme:<space>", "grapheme:'")


def cluster_groups(profiles: np.ndarray, percentiles=PERCENTILES) -> dict:
    """Cluster rows of ``profiles`` ``(groups, features)``.

    Returns ``linkage`` (scipy's matrix), and per percentile ``threshold`` (distance),
    ``n_clusters``, ``labels`` and ``silhouette`` (NaN when undefined).
    """
    x = np.asarray(profiles, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"need at least 2 profiles as (groups, features), got {x.shape}")
    distances = pdist(x)
    z = linkage(distances, method="complete")
    out = {"linkage": z, "threshold": [], "n_clusters": [], "labels": [], "silhouette": []}
    for p in percentiles:
        t = float(np.percentile(distances, p))
        labels = fcluster(z, t=t, criterion="distance")
        k = len(np.unique(labels))
        score = silhouette_score(x, labels) if 1 < k < len(x) else np.nan
        out["threshold"].append(t)
        out["n_clusters"].append(k)
        out["labels"].append(labels)
        out["silhouette"].append(float(score))
    return out


def groups_of(tree: xr.DataTree, grouping: str, min_count: int = 1, exclude=NON_SPEECH):
    """The groups of one grouping (``"phoneme"`` ...) kept for clustering, and those left
    out with the reason."""
    names, groupings, _ = group_coords(tree)
    kept, left_out = [], {}
    for g, of, n in zip(names, groupings, tree["count"].values):
        if of != grouping:
            continue
        if g in exclude:
            left_out[g] = "not speech"
        elif n < min_count:
            left_out[g] = f"{int(n)} events < {min_count}"
        else:
            kept.append(g)
    return kept, left_out


def representation_power(
    tree: xr.DataTree,
    groupings=("grapheme", "phoneme"),
    variable: str = "gradnap",
    percentiles=PERCENTILES,
    min_count: int = 10,
    layers=None,
) -> xr.Dataset:
    """Silhouette scores per grouping, layer and percentile, as an ``xarray.Dataset``.

    Variables: ``silhouette`` and ``n_clusters`` and ``threshold`` over (grouping, layer,
    percentile); ``mean_silhouette`` (mean over the defined cuts) and ``n_defined`` over
    (grouping, layer); ``n_groups`` per grouping. Groups with fewer than ``min_count``
    events, and non-speech labels, are left out (listed in the ``left_out`` attribute).

    >>> power = representation_power(tree)  # doctest: +SKIP
    >>> power["mean_silhouette"].to_pandas()  # doctest: +SKIP
    """
    layers = list(layers or tree.children)
    shape = (len(groupings), len(layers), len(percentiles))
    sil = np.full(shape, np.nan)
    ncl = np.zeros(shape, dtype=int)
    thr = np.full(shape, np.nan)
    n_groups, left = [], {}
    for i, grouping in enumerate(groupings):
        kept, left_out = groups_of(tree, grouping, min_count)
        left.update(left_out)
        n_groups.append(len(kept))
        if len(kept) < 3:
            continue
        for j, layer in enumerate(layers):
            prof = tree[layer].to_dataset()[variable].sel(group=kept)
            res = cluster_groups(prof.values.reshape(len(kept), -1), percentiles)
            sil[i, j], ncl[i, j], thr[i, j] = res["silhouette"], res["n_clusters"], res["threshold"]
    defined = ~np.isnan(sil)
    with np.errstate(invalid="ignore"):
        mean = np.where(
            defined.any(-1), np.nansum(sil, -1) / np.maximum(defined.sum(-1), 1), np.nan
        )
    ds = xr.Dataset(
        {
            "silhouette": (("grouping", "layer", "percentile"), sil),
            "n_clusters": (("grouping", "layer", "percentile"), ncl),
            "threshold": (("grouping", "layer", "percentile"), thr),
            "mean_silhouette": (("grouping", "layer"), mean),
            "n_defined": (("grouping", "layer"), defined.sum(-1)),
            "n_groups": ("grouping", n_groups),
        },
        coords={"grouping": list(groupings), "layer": layers, "percentile": list(percentiles)},
        attrs={
            "variable": variable,
            "min_count": min_count,
            "left_out": "; ".join(f"{g} ({why})" for g, why in left.items()),
            "method": "complete linkage, Euclidean; cuts at distance percentiles",
        },
    )
    ds["percentile"].attrs["units"] = "percent of pairwise distances"
    return ds
