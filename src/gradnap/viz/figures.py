"""The paper's figures from a profile result: input-layer profiles as spectrogram images
(Figure 2), action-potential plots (Figure 3), Silhouette scores per layer and the
dendrogram (Figure 4), and optimal inputs. Functions return a matplotlib ``Figure``;
:func:`save_figure` writes it as PNG and SVG under stable names."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.layout_engine import ConstrainedLayoutEngine  # noqa: E402
from scipy.cluster import hierarchy  # noqa: E402

from gradnap.analysis.clustering import cluster_groups, groups_of  # noqa: E402
from gradnap.analysis.responsiveness import top_neurons  # noqa: E402
from gradnap.atomic import atomic_write  # noqa: E402
from gradnap.profiling.groupings import group_coords  # noqa: E402

CMAP = "RdBu_r"  # diverging, centred on zero
HZ_TICKS = (100, 250, 500, 1000, 2000, 4000, 8000)
TOP_COLOURS = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple")


def save_figure(fig, out_dir: str | Path, stem: str, formats=("png", "svg")) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg`` (written under a temporary name, then renamed)
    and close the figure."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # a figure laid out by constrained layout already fits its canvas; bbox_inches="tight"
    # would draw it once more per format only to measure it (a third of the report's time)
    laid_out = isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine)
    paths = []
    for fmt in formats:
        path = out_dir / f"{stem}.{fmt}"
        # SVG text stays text (editable, smaller, faster than a path per glyph)
        with atomic_write(path) as tmp, plt.rc_context({"svg.fonttype": "none"}):
            fig.savefig(tmp, format=fmt, dpi=110, bbox_inches=None if laid_out else "tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _margins(fig, left=0.8, right=0.15, bottom=0.5, top=0.32) -> None:
    """Fixed margins in inches, for the figures the report draws per group and layer:
    constrained layout measures every text element again per save (about half of these
    figures' drawing time), and their axes labels fit these margins. (save_figure still
    crops them with bbox_inches="tight".)"""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h)


def _hz_axis(ax, frequency: np.ndarray) -> None:
    """Mel bins are equally spaced on the mel scale; label them in Hz."""
    ticks = [int(np.argmin(np.abs(frequency - f))) for f in HZ_TICKS if f <= frequency[-1] * 1.01]
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{f:g}" if f < 1000 else f"{f / 1000:g}k" for f in HZ_TICKS[: len(ticks)]])
    ax.set_ylabel("frequency (Hz, mel scale)")


def _spectrogram(ax, values: np.ndarray, offset_ms: np.ndarray, frequency, title: str, limit=None):
    vmax = float(np.abs(values).max()) or 1.0
    step = offset_ms[1] - offset_ms[0] if len(offset_ms) > 1 else 10.0
    im = ax.imshow(
        values,
        origin="lower",
        aspect="auto",
        cmap=CMAP,
        vmin=-vmax,
        vmax=vmax,
        extent=(offset_ms[0] - step / 2, offset_ms[-1] + step / 2, -0.5, values.shape[0] - 0.5),
        interpolation="nearest",
    )
    if limit:
        ax.set_xlim(-limit, limit)
    ax.set_xlabel("time offset (ms)")
    if frequency is not None:
        _hz_axis(ax, np.asarray(frequency))
    ax.set_title(title, fontsize=9)
    return im


def input_profiles(
    layer: xr.Dataset, groups, variables=("navai", "gradnap"), limit_ms: float | None = 300
):
    """Figure 2: per group (rows) NAvAI beside GradNAP (columns) of the input layer, time
    offset (ms) against frequency (Hz on the mel scale), colours centred on zero."""
    groups = list(groups)
    fig, axes = plt.subplots(
        len(groups),
        len(variables),
        figsize=(3.4 * len(variables), 2.6 * len(groups)),
        squeeze=False,
        constrained_layout=True,
    )
    freq = layer["frequency"].values if "frequency" in layer.coords else None
    off = layer["offset_ms"].values
    for row, g in zip(axes, groups):
        n = int(layer["count"].sel(group=g))
        for ax, var in zip(row, variables):
            im = _spectrogram(
                ax, layer[var].sel(group=g).values, off, freq, f"{g} {var} (n={n})", limit_ms
            )
            fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def action_potentials(layer: xr.Dataset, group: str, k: int = 5, variable: str = "gradnap"):
    """Figure 3: every neuron's profile row against time offset, superimposed in grey; the
    ``k`` most responsive neurons (largest ``|r_n|``) in colour."""
    prof = layer[variable].sel(group=group)
    off = layer["offset_ms"].values
    top = top_neurons(layer, group, k, variable)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    _margins(fig)
    ax.plot(off, prof.values.T, color="0.7", lw=0.5)
    for colour, n, r in zip(TOP_COLOURS, top["neuron"].values, top.values):
        ax.plot(
            off, prof.sel(neuron=n).values, color=colour, lw=1.6, label=f"neuron {n} (r={r:.3g})"
        )
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("time offset (ms)")
    ax.set_ylabel(variable)
    ax.set_title(f"{group}: {prof.sizes['neuron']} neurons, top {k} by |r_n|", fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    return fig


def silhouette_plot(power: xr.Dataset):
    """Figure 4 (left): mean Silhouette score per layer, groupings side by side; layers
    where no cut was defined are marked 'n/a'."""
    layers = list(power["layer"].values)
    groupings = list(power["grouping"].values)
    width = 0.8 / len(groupings)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(layers)), 3.4), constrained_layout=True)
    x = np.arange(len(layers))
    for i, grouping in enumerate(groupings):
        vals = power["mean_silhouette"].sel(grouping=grouping).values
        pos = x + (i - (len(groupings) - 1) / 2) * width
        ax.bar(
            pos,
            np.nan_to_num(vals),
            width,
            label=f"{grouping}s ({int(power['n_groups'].sel(grouping=grouping))})",
        )
        for p, v in zip(pos, vals):
            if np.isnan(v):
                ax.text(p, 0, "n/a", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_xticks(x)
    ax.set_xticklabels(layers, rotation=45, ha="right")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("mean Silhouette score")
    ax.set_title(
        "representation power per layer (complete linkage, 75-95th percentile cuts)", fontsize=9
    )
    ax.legend(fontsize=8)
    return fig


def dendrogram(
    tree: xr.DataTree,
    layer: str,
    grouping: str = "phoneme",
    percentile: float = 75,
    variable: str = "gradnap",
    min_count: int = 10,
):
    """Figure 4 (right): complete-linkage dendrogram of a layer's group profiles, cut at
    the given percentile of the pairwise distances (dashed line)."""
    kept, _ = groups_of(tree, grouping, min_count)
    if len(kept) < 3:
        raise ValueError(f"{layer}: fewer than 3 {grouping} groups with >= {min_count} events")
    prof = tree[layer].to_dataset()[variable].sel(group=kept)
    res = cluster_groups(prof.values.reshape(len(kept), -1), [percentile])
    names, _, labels = group_coords(tree)
    label_of = dict(zip(names, labels))
    fig, ax = plt.subplots(figsize=(max(6, 0.18 * len(kept)), 3.4))
    _margins(fig, bottom=0.55)
    hierarchy.dendrogram(
        res["linkage"],
        labels=[label_of[g] for g in kept],
        ax=ax,
        color_threshold=res["threshold"][0],
        leaf_font_size=7,
    )
    ax.axhline(res["threshold"][0], color="k", ls="--", lw=0.8)
    sil = res["silhouette"][0]
    ax.set_title(
        f"{layer}, {grouping}s: {res['n_clusters'][0]} clusters at the {percentile:g}th "
        f"percentile, Silhouette {'n/a' if np.isnan(sil) else f'{sil:.3f}'}",
        fontsize=9,
    )
    ax.set_ylabel("Euclidean distance")
    return fig


def optimal_input_figure(x: xr.DataArray):
    """An optimal input ``(bin, offset)`` drawn like the input profiles."""
    fig, ax = plt.subplots(figsize=(4.2, 2.8), constrained_layout=True)
    freq = x["frequency"].values if "frequency" in x.coords else None
    im = _spectrogram(
        ax,
        x.values,
        x["offset_ms"].values,
        freq,
        f"{x.attrs.get('group')} in {x.attrs.get('layer')}: neurons {x.attrs.get('neurons')}",
    )
    fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


def heatmap_png(values: np.ndarray, path: str | Path) -> Path:
    """A bare neurons x offsets image (no axes), fast enough for every layer and group."""
    path = Path(path)
    vmax = float(np.abs(values).max()) or 1.0
    with atomic_write(path) as tmp:
        plt.imsave(tmp, np.asarray(values)[::-1], cmap=CMAP, vmin=-vmax, vmax=vmax, format="png")
    return path
