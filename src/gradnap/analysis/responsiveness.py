"""Neuron responsiveness ``r_n`` and the most responsive neurons (METHOD.md
"Responsiveness and feature visualization")."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from gradnap.profiling import method


def responsiveness(layer: xr.Dataset, variable: str = "gradnap") -> xr.DataArray:
    """``r_n = sign(sum_tau P[n, tau]) * sum_tau |P[n, tau]|`` for every group and neuron.

    ``layer`` is one layer node of a profile result (``tree["conv3"].to_dataset()``).
    Returns ``(group, neuron)``.

    >>> r = responsiveness(tree["conv1"].to_dataset())  # doctest: +SKIP
    """
    profile = layer[variable]
    r = method.responsiveness(torch.from_numpy(np.asarray(profile.values, dtype=np.float64)))
    return xr.DataArray(
        r.numpy(),
        dims=profile.dims[:-1],
        coords={d: profile.coords[d] for d in profile.dims[:-1] if d in profile.coords},
        name="responsiveness",
        attrs={"long_name": f"responsiveness r_n of the {variable}"},
    )


def top_neurons(
    layer: xr.Dataset, group: str, k: int = 5, variable: str = "gradnap"
) -> xr.DataArray:
    """The ``k`` neurons of largest ``|r_n|`` for ``group`` **[choice]**, most responsive
    first; values are their ``r_n`` (the sign says whether the group raises or lowers
    them), coordinate ``neuron`` their indices."""
    if group not in layer["group"].values:
        raise KeyError(f"no group {group!r} in this result")
    r = responsiveness(layer[[variable]].sel(group=[group]), variable).isel(group=0)
    order = np.argsort(-np.abs(r.values), kind="stable")[:k]
    return r.isel(neuron=order)
