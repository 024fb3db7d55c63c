"""Figures of GradNAPs across training (matplotlib; save with :func:`save_figure` as PNG
and SVG): Silhouette scores as layer x step heatmaps, the settling step as a group x
layer heatmap, and one group's input-layer profile as small multiples over the steps."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from gradnap.profiling.groupings import split_group  # noqa: E402
from gradnap.viz.figures import CMAP, _spectrogram  # noqa: E402


def _step_labels(ds) -> list[str]:
    steps = ds["step"].values
    cer = ds["dev_cer"].values if "dev_cer" in ds.coords else [np.nan] * len(steps)
    return [f"{int(s)}" + ("" if np.isnan(c) else f"\n{100 * c:.0f} %") for s, c in zip(steps, cer)]


def silhouette_heatmaps(sil: xr.Dataset):
    """Mean Silhouette score per layer (rows) and training step (columns), one panel per
    grouping and, with two groupings, their difference (second minus first); colours
    centred on zero. Columns are the kept steps in order (log-spaced in training), labelled
    with the step and the dev CER."""
    groupings = [str(g) for g in sil["grouping"].values]
    m = sil["mean_silhouette"].transpose("grouping", "layer", "step")
    panels = [(f"{g}s", m.sel(grouping=g).values) for g in groupings]
    if len(groupings) == 2:
        a, b = groupings
        panels.append((f"{b}s minus {a}s", panels[1][1] - panels[0][1]))
    layers = [str(x) for x in sil["layer"].values]
    n_steps = sil.sizes["step"]
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(1.2 + (1.9 + 0.45 * n_steps) * len(panels), 0.9 + 0.3 * len(layers)),
        squeeze=False,
        constrained_layout=True,
    )
    for ax, (title, values) in zip(axes[0], panels):
        finite = values[np.isfinite(values)]
        vmax = float(np.abs(finite).max()) if finite.size else 1.0
        im = ax.imshow(
            np.ma.masked_invalid(values),
            origin="lower",
            aspect="auto",
            cmap=plt.get_cmap(CMAP).with_extremes(bad="0.85"),
            vmin=-vmax,
            vmax=vmax,
            interpolation="nearest",
        )
        ax.set_yticks(range(len(layers)))
        ax.set_yticklabels(layers, fontsize=7)
        ax.set_xticks(range(n_steps))
        ax.set_xticklabels(_step_labels(sil), fontsize=6)
        ax.set_xlabel("training step (dev CER)", fontsize=8)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.9).set_label("mean Silhouette score", fontsize=7)
    axes[0][0].set_ylabel("layer")
    return fig


def settling_heatmap(settle: xr.Dataset, grouping: str | None = "phoneme"):
    """Settling step per group (rows) and layer (columns): the training step from which the
    group's profile keeps a correlation of at least the threshold with the final one (log
    colour scale; grey: never, the group has no events at the final step)."""
    steps = settle["settling_step"]
    groups = [str(g) for g in steps["group"].values]
    if grouping:
        groups = [g for g in groups if g.startswith(f"{grouping}:")]
    values = steps.sel(group=groups).transpose("group", "layer").values
    layers = [str(x) for x in steps["layer"].values]
    all_steps = settle["step"].values.astype(float)
    lo, hi = max(all_steps.min(), 1.0), max(all_steps.max(), 2.0)
    fig, ax = plt.subplots(
        figsize=(1.8 + 0.5 * len(layers), 1.0 + 0.16 * len(groups)), constrained_layout=True
    )
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.8")
    im = ax.imshow(
        np.ma.masked_invalid(values),
        aspect="auto",
        cmap=cmap,
        norm=LogNorm(lo, hi),
        interpolation="nearest",
    )
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(layers, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(groups)))
    ax.set_yticklabels([split_group(g)[1] for g in groups], fontsize=6)
    ax.set_xlabel("layer")
    ax.set_ylabel(f"{grouping or 'group'}")
    threshold = settle.attrs.get("threshold", 0.9)
    variable = settle.attrs.get("variable", "gradnap")
    title = f"settling step: from here on r >= {threshold:g} with the final {variable}"
    ax.set_title(title, fontsize=8)
    cb = fig.colorbar(im, ax=ax, shrink=0.9)
    cb.set_label("training step (log scale)", fontsize=7)
    return fig


def profile_over_training(
    layer: xr.Dataset, group: str, variable: str = "gradnap", limit_ms: float | None = 300
):
    """One group's profile in the input layer (or any layer) at every step, side by side:
    time offset (ms) against frequency (Hz, mel scale) or neuron, each panel with its own
    colour scale centred on zero (its largest magnitude in the colour bar)."""
    prof = layer[variable].sel(group=group)
    n = prof.sizes["step"]
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.0 * cols, 2.5 * rows), squeeze=False, constrained_layout=True
    )
    freq = layer["frequency"].values if "frequency" in layer.coords else None
    off = layer["offset_ms"].values
    counts = layer["count"].sel(group=group).values if "count" in layer else [None] * n
    cer = layer["dev_cer"].values if "dev_cer" in layer.coords else [np.nan] * n
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        values = prof.isel(step=k).values
        title = f"step {int(prof['step'].values[k])}"
        if not np.isnan(cer[k]):
            title += f", CER {100 * cer[k]:.0f} %"
        if counts[k] is not None:
            title += f", n={int(counts[k])}"
        if not np.isfinite(values).any():
            ax.set_title(title + " (no events)", fontsize=8)
            ax.axis("off")
            continue
        im = _spectrogram(ax, np.nan_to_num(values), off, freq, title, limit_ms)
        if freq is None:
            ax.set_ylabel("neuron")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"{group}: {variable} over training", fontsize=10)
    return fig
