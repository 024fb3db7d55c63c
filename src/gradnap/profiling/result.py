"""Profiles as a labeled ``xarray.DataTree``: one node per layer, saved as NetCDF.

Each layer node holds the variables of the run's variants
(:mod:`gradnap.profiling.method`; by default ``gradnap``, ``mean_activation``,
``mean_gradient``, ``mask`` and ``navai`` over (group, neuron, offset), ``nap`` over
(group, neuron, rank), ``mean_activation_all`` over (neuron, offset)), ``count`` over
(group) and ``split_half_r``; with top events (:mod:`gradnap.profiling.topevents`), also
``top_activation``, ``top_utterance`` (index into the configuration's ``utterance_ids``,
-1 where a group has fewer events) and ``top_time`` (seconds, NaN there) over (group,
neuron, top); its ``profiles`` attribute names the variants' profile
variables (comma-separated). The root holds the shared ``group`` coordinate (``grapheme:a``,
``phoneme:AE``, ...), the phoneme coverage table, and the run's configuration as a JSON
string attribute ``config``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from gradnap.outputs import write_netcdf
from gradnap.profiling.accumulate import ProfileAccumulator
from gradnap.profiling.align import offsets
from gradnap.profiling.groupings import split_group
from gradnap.profiling.method import DEFAULT_VARIANTS, Variant, make_variants


def build_tree(
    acc: ProfileAccumulator,
    layer_info: dict[str, dict],
    config: dict,
    coverage: dict[str, list[int]] | None = None,
    halves: tuple[ProfileAccumulator, ProfileAccumulator] | None = None,
    variants=DEFAULT_VARIANTS,
) -> xr.DataTree:
    """Turn accumulated sums into profiles. ``layer_info[layer]`` gives ``frame_ms`` (ms
    per frame of the layer) and optionally ``frequency`` (Hz per neuron, for the input)
    and ``neurons`` (the kept neuron indices). With ``halves`` (the same sums split by
    utterance into two disjoint halves), each layer also gets ``split_half_r``: per group,
    the Pearson correlation of the two halves' profiles of the first variant (NaN where a
    half lacks the group or a profile is constant). ``variants``: names or
    :class:`~gradnap.profiling.method.Variant` objects."""
    variants = make_variants(variants)
    # groups in sorted order: the same result whatever order (or process) saw them first
    order = sorted(range(len(acc.groups_)), key=acc.groups_.__getitem__)
    groups = [acc.groups_[i] for i in order]
    counts = acc.counts_.numpy()[order]
    pairs = [split_group(g) for g in groups]
    root = xr.Dataset(
        coords={
            "group": groups,
            "grouping": ("group", [p[0] for p in pairs], {"long_name": "grouping of the group"}),
            "label": ("group", [p[1] for p in pairs], {"long_name": "label within the grouping"}),
        }
    )
    root["count"] = ("group", counts, {"long_name": "events per group"})
    root["n_events"] = ((), acc.n_events_, {"long_name": "events in the run"})
    if coverage:
        phones = sorted(coverage)
        root["segments_with_events"] = ("phone", [coverage[p][0] for p in phones])
        root["segments_without_events"] = ("phone", [coverage[p][1] for p in phones])
        root = root.assign_coords(phone=phones)
    root.attrs["config"] = json.dumps(config, default=str)
    root.attrs["title"] = "GradNAP profiles (gradnap)"
    children = {}
    for layer, info in layer_info.items():
        group, total = acc.means(layer)
        group = {k: v.detach().cpu()[order] for k, v in group.items()}
        total = {k: v.detach().cpu() for k, v in total.items()}
        n_neurons, width = next(iter(total.values())).shape
        off = offsets(width).numpy()
        neuron = np.asarray(info.get("neurons", np.arange(n_neurons)))
        coords = {
            "neuron": neuron,
            "offset": off,
            "rank": np.arange(width),
            "offset_ms": ("offset", off * info["frame_ms"], {"units": "ms"}),
        }
        for cname, (values, attrs) in info.get("neuron_coords", {}).items():
            coords[cname] = ("neuron", np.asarray(values)[neuron], attrs)
        if "frequency" in info:
            coords["frequency"] = (
                "neuron",
                np.asarray(info["frequency"])[neuron],
                {"units": "Hz", "long_name": "mel bin centre frequency"},
            )
        data = {}
        for v in variants:
            data.update({k: (dims, x.numpy()) for k, (dims, x) in v.profile(group, total).items()})
        data["count"] = ("group", counts)
        ds = xr.Dataset(data, coords=coords)
        ds = ds.assign_coords(grouping=root["grouping"], label=root["label"])  # not inherited
        if halves is not None:
            ds["split_half_r"] = (
                "group",
                _split_half(halves, layer, groups, variants[0]),
                {
                    "long_name": f"split-half correlation of the {variants[0].name} (two "
                    "halves of the data)"
                },
            )
        if layer in acc.top_:
            timing = (info["frame_ms"], info.get("time0_ms", 0.0))
            ds = ds.assign(_top_variables(acc, layer, order, *timing))
            ds["top"] = ("top", np.arange(ds.sizes["top"]), {
                "long_name": "rank of the event by aligned activation (0: largest)",
            })  # fmt: skip
        ds["offset"].attrs.update(units="frames", long_name="frames from the alignment point")
        ds["rank"].attrs["long_name"] = "rank after sorting along time (descending)"
        ds.attrs["frame_ms"] = info["frame_ms"]
        ds.attrs["profiles"] = ",".join(v.name for v in variants)
        children[layer] = ds
    return xr.DataTree.from_dict({"/": root, **{f"/{k}": v for k, v in children.items()}})


def _top_variables(acc, layer: str, order: list[int], frame_ms: float, time0_ms=0.0) -> dict:
    """The layer's top events as result variables over (group, neuron, top); the time of
    frame ``t`` is ``time0_ms + t * frame_ms``."""
    n = len(acc.groups_)
    top = {f: t[:n].detach().cpu()[order].numpy() for f, t in acc.top_[layer].items()}
    missing = top["utterance"] < 0
    dims = ("group", "neuron", "top")
    value = np.where(missing, np.nan, top["value"]).astype(np.float32)
    time = np.where(missing, np.nan, (time0_ms + top["frame"] * frame_ms) / 1000.0)
    what = "X[f, tau_0] (z-normalized log-mel)" if layer == "input" else "A_l[n, tau_l]"
    out = {
        "top_activation": (dims, value, {
            "long_name": f"aligned activation {what} of the group's top events",
            "units": "activation" if layer != "input" else "z-normalized log-mel",
        }),
        "top_utterance": (dims, top["utterance"], {
            "long_name": "utterance of the event: index into config utterance_ids (-1: none)",
        }),
        "top_time": (dims, time, {
            "long_name": "alignment time tau_l of the event in its utterance", "units": "s",
        }),
    }  # fmt: skip
    return out


def _split_half(halves, layer: str, groups: list[str], variant: Variant) -> np.ndarray:
    """Per group: Pearson r between the profiles of two disjoint halves of the utterances."""
    profiles = []
    for half in halves:
        if half.n_events_ == 0:
            return np.full(len(groups), np.nan)
        g = variant.profile(*half.means(layer))[variant.name][1]
        g = g.reshape(g.shape[0], -1).detach().cpu().numpy()
        index = {name: i for i, name in enumerate(half.groups_)}
        counts = half.counts_.numpy()
        profiles.append([g[index[n]] if n in index and counts[index[n]] else None for n in groups])
    out = np.full(len(groups), np.nan)
    for i, (a, b) in enumerate(zip(*profiles)):
        if a is not None and b is not None and a.std() > 0 and b.std() > 0:
            out[i] = np.corrcoef(a, b)[0, 1]
    return out


def save_profiles(tree: xr.DataTree, path: str | Path) -> Path:
    """Write NetCDF (h5netcdf) whole or not at all (:func:`gradnap.outputs.write_netcdf`;
    a failed write is one :class:`gradnap.outputs.OutputError`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_netcdf(tree, path)


def load_profiles(path: str | Path) -> xr.DataTree:
    """Read a result written by :func:`save_profiles` (fully loaded, file closed)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such profile result")
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        return tree.load()


def config_of(tree: xr.DataTree) -> dict:
    """The run's configuration stored in the result."""
    return json.loads(tree.attrs.get("config", "{}"))


def to_table(tree: xr.DataTree, layer: str, variable: str = "gradnap") -> pd.DataFrame:
    """One profile variable of a layer as a tidy table (one row per group, neuron, offset)."""
    da = tree[layer].to_dataset()[variable]
    return da.to_dataframe(name=variable).reset_index()
