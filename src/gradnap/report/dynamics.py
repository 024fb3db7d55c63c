"""The report's dynamics page, for a trajectory (a result with a ``step`` dimension):
checkpoints with their dev CER and events, Silhouette scores per layer and step, when each
group's profile settles, and chosen groups' input-layer profiles over the steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from gradnap.analysis.dynamics import settling, silhouette_over_training
from gradnap.viz import dynamics as dviz
from gradnap.viz.figures import save_figure

SMALL_MULTIPLES = ("phoneme:AE", "phoneme:IY", "phoneme:T", "grapheme:e")


def _fmt(v, pattern="{:.2f}") -> str:
    v = float(v)
    return "n/a" if np.isnan(v) else pattern.format(v)


def dynamics_page(traj: xr.DataTree, out: Path, min_count: int = 10, threshold: float = 0.9):
    """Draw the figures under ``out/figures`` and return what ``dynamics.html.j2`` shows."""
    fig_dir = out / "figures"
    config = json.loads(traj.attrs.get("config", "{}")).get("trajectory", {})
    n = traj.sizes["step"]
    page = {
        "events": config.get("events", "own"),
        "events_from": config.get("events_from"),
        "threshold": threshold,
        "steps": [
            (
                int(traj["step"].values[k]),
                _fmt(traj["epoch"].values[k]),
                _fmt(100 * traj["dev_cer"].values[k], "{:.1f}"),
                int(traj["n_events"].values[k]),
            )
            for k in range(n)
        ],
        "figures": [],
        "silhouette": [],
    }
    groups = [str(g) for g in traj["group"].values]
    groupings = tuple(
        g for g in ("grapheme", "phoneme") if any(x.startswith(f"{g}:") for x in groups)
    )
    if groupings:
        sil = silhouette_over_training(traj, groupings, min_count=min_count)
        save_figure(dviz.silhouette_heatmaps(sil), fig_dir, "silhouette_over_training")
        page["figures"].append(
            ("figures/silhouette_over_training.png", "mean Silhouette score per layer and step")
        )
        for g in groupings:
            m = sil["mean_silhouette"].sel(grouping=g).transpose("layer", "step")
            page["silhouette"].append(
                {
                    "title": f"{g}s",
                    "rows": [
                        [str(layer)] + [_fmt(v) for v in m.sel(layer=layer).values]
                        for layer in m["layer"].values
                    ],
                }
            )
    settle = settling(traj, threshold)
    final_counts = traj["count"].isel(step=-1).to_series()
    kept = [g for g in groups if final_counts.get(g, 0) >= min_count]
    settle_kept = settle.sel(group=kept)
    grouping = "phoneme" if "phoneme" in groupings else None
    save_figure(dviz.settling_heatmap(settle_kept, grouping), fig_dir, "settling_step")
    page["figures"].append(("figures/settling_step.png", "settling step per group and layer"))
    med = settle_kept["settling_step"]
    page["settling"] = [
        (str(layer), _fmt(np.nanmedian(med.sel(layer=layer).values) if np.isfinite(
            med.sel(layer=layer).values).any() else np.nan, "{:.0f}"))
        for layer in med["layer"].values
    ]  # fmt: skip
    if "input" in traj.children:
        ds = traj["input"].to_dataset().assign_coords(dev_cer=traj["dev_cer"])
        for g in SMALL_MULTIPLES:
            if g in groups and final_counts.get(g, 0) > 0:
                stem = f"input_over_training_{g.replace(':', '-')}"
                save_figure(dviz.profile_over_training(ds, g), fig_dir, stem)
                page["figures"].append((f"figures/{stem}.png", f"input-layer GradNAP of {g}"))
    page["header"] = [str(s) for s, *_ in page["steps"]]
    return page
