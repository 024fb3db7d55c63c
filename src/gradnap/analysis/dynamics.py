"""Analyses over training, on a trajectory (:func:`gradnap.profiling.trajectory.trajectory`).

- :func:`silhouette_over_training`: per grouping, layer and step the mean Silhouette score
  of :func:`representation_power` (the paper's Figure 4 as training goes on);
- :func:`settling`: per group and layer, the Pearson correlation of its profile at each
  step with its profile at the final step, and the *settling step*: the first step from
  which that correlation stays at or above a threshold (0.9) up to the end. A group absent
  at a step (no events there) has no correlation there (NaN, not settled); a group absent
  at the final step never settles (NaN).

Both carry the dev CER of each step (``dev_cer``) as a coordinate.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from gradnap.analysis.clustering import representation_power


def at_step(traj: xr.DataTree, index: int) -> xr.DataTree:
    """The profiles of one step (by position) as an ordinary result."""
    return traj.isel(step=index)


def _step_coords(traj: xr.DataTree) -> dict:
    root = traj.to_dataset()
    return {k: root[k].values for k in ("step", "epoch", "dev_cer") if k in root.coords}


def silhouette_over_training(
    traj: xr.DataTree,
    groupings=("grapheme", "phoneme"),
    variable: str = "gradnap",
    min_count: int = 10,
    layers=None,
) -> xr.Dataset:
    """:func:`representation_power` at every step of ``traj``, stacked along ``step``:
    ``mean_silhouette`` over (step, grouping, layer), ``silhouette`` over (step, grouping,
    layer, percentile), ``n_groups`` over (step, grouping), with ``dev_cer`` on ``step``.

    >>> sil = silhouette_over_training(traj)  # doctest: +SKIP
    >>> sil["mean_silhouette"].sel(grouping="phoneme").to_pandas()  # doctest: +SKIP
    """
    per_step = [
        representation_power(at_step(traj, k), groupings, variable, min_count=min_count,
                              layers=layers)
        for k in range(traj.sizes["step"])
    ]  # fmt: skip
    ds = xr.concat(per_step, dim="step", combine_attrs="drop_conflicts")
    coords = _step_coords(traj)
    ds = ds.assign_coords({k: ("step", v) for k, v in coords.items()})
    ds.attrs.update(variable=variable, min_count=min_count)
    return ds


def correlation_with_final(traj: xr.DataTree, variable: str = "gradnap", layers=None):
    """Per (group, layer, step): Pearson r between the flattened profile at the step and
    at the final step (NaN where either is missing or constant)."""
    layers = list(layers or traj.children)
    groups = [str(g) for g in traj["group"].values]
    n_steps = traj.sizes["step"]
    r = np.full((len(groups), len(layers), n_steps), np.nan)
    for j, layer in enumerate(layers):
        prof = traj[layer].to_dataset()[variable].transpose("step", "group", ...)
        x = prof.values.reshape(n_steps, len(groups), -1).astype(np.float64)
        a = x - x.mean(-1, keepdims=True)
        b = a[-1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            r[:, j, :] = ((a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))).T
    return xr.DataArray(
        r,
        dims=("group", "layer", "step"),
        coords={"group": groups, "layer": layers, "step": traj["step"].values},
        name="correlation",
        attrs={"long_name": f"Pearson r of the {variable} with the final step's"},
    )


def settling_index(r: np.ndarray, threshold: float) -> np.ndarray:
    """For correlations over steps (last axis): the first index from which every value is
    at or above ``threshold``; -1 where the last value is not (never settles)."""
    ok = np.nan_to_num(np.asarray(r, dtype=float), nan=-np.inf) >= threshold
    # from the end: does everything from here on stay at or above the threshold?
    tail = np.flip(np.logical_and.accumulate(np.flip(ok, -1), axis=-1), -1)
    first = np.argmax(tail, axis=-1)
    return np.where(tail[..., -1], first, -1)


def settling(
    traj: xr.DataTree, threshold: float = 0.9, variable: str = "gradnap", layers=None
) -> xr.Dataset:
    """When each group's profile settles in each layer.

    Returns ``correlation`` over (group, layer, step) (see :func:`correlation_with_final`),
    ``settling_step`` over (group, layer): the training step from which the correlation
    stays >= ``threshold`` (NaN: never, i.e. the group is missing at the final step), and
    ``count`` over (step, group); ``dev_cer`` on ``step``.

    >>> s = settling(traj, threshold=0.9)  # doctest: +SKIP
    >>> s["settling_step"].sel(group="phoneme:AE").to_pandas()  # doctest: +SKIP
    """
    r = correlation_with_final(traj, variable, layers)
    index = settling_index(r.values, threshold)
    steps = np.asarray(traj["step"].values, dtype=float)
    settled = np.where(index >= 0, steps[np.maximum(index, 0)], np.nan)
    ds = xr.Dataset(
        {
            "correlation": r,
            "settling_step": (
                ("group", "layer"),
                settled,
                {"long_name": f"first step from which r >= {threshold:g} to the end"},
            ),
            "count": traj["count"].transpose("step", "group"),
        }
    )
    coords = _step_coords(traj)
    ds = ds.assign_coords({k: ("step", v) for k, v in coords.items()})
    ds.attrs.update(threshold=threshold, variable=variable)
    return ds
