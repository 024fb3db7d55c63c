"""``gradnap dynamics``: GradNAPs across training, from the checkpoints a run kept."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gradnap.cli.common import (
    app,
    check_device,
    check_out,
    console,
    fail,
    read,
    threads,
)
from gradnap.options import DEFAULT_THREADS, THREADS_HELP


@app.command()
def dynamics(
    checkpoints: Annotated[
        str, typer.Option(help="Folder of checkpoints (train --keep-checkpoints), or a glob.")
    ],
    out: Annotated[Path, typer.Option(help="Trajectory file (NetCDF) to write.")],
    corpus: Annotated[
        Path | None, typer.Option(help="Corpus folder (default: the bundled evaluation corpus).")
    ] = None,
    layers: Annotated[
        str | None, typer.Option(help="Comma-separated layers (default: all).")
    ] = None,
    group_by: Annotated[
        str, typer.Option(help="Comma-separated groupings (as for 'gradnap profile').")
    ] = "grapheme,phoneme",
    events: Annotated[
        str, typer.Option(help="own (each checkpoint's predictions) or final (the last's).")
    ] = "own",
    alignments: Annotated[
        Path | None, typer.Option(help="Folder of TextGrids (default: beside the audio).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Profile only the first N utterances.")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    resume: Annotated[
        bool, typer.Option(help="Continue a killed run (finished checkpoints in OUT.steps/).")
    ] = False,
    figures: Annotated[
        Path | None, typer.Option(help="Folder for the figures (PNG and SVG).")
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Correlation with the final profile that counts as settled.")
    ] = 0.9,
    group: Annotated[
        str, typer.Option(help="Group drawn over the steps in the input layer.")
    ] = "phoneme:AE",
    min_count: Annotated[int, typer.Option(help="Fewer events: not clustered.")] = 10,
    skip_bad: Annotated[bool, typer.Option(help="Leave out bad utterances (listed).")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing trajectory at OUT.")] = False,
    n_threads: Annotated[int, typer.Option("--threads", help=THREADS_HELP)] = DEFAULT_THREADS,
) -> None:
    """Profile every kept checkpoint of a training run on the same utterances; print the
    Silhouette scores per layer and step and when each group's profile settles.

    Under torchrun each process profiles its shard of the utterances."""
    from gradnap.analysis.dynamics import settling, silhouette_over_training
    from gradnap.models.checkpoint import CheckpointError
    from gradnap.outputs import OutputError
    from gradnap.profiling.trajectory import find_checkpoints, trajectory

    check_out(out, force=force, resume=resume, what="trajectory", example="traj.nc")
    check_device(device)
    threads(n_threads)
    try:
        paths = find_checkpoints(checkpoints)
    except FileNotFoundError as exc:
        fail(str(exc))
    from gradnap.models.checkpoint import load

    net = load(paths[0])
    if corpus is None:
        from gradnap.models.checkpoint import DEFAULT_CORPUS as corpus
    data = read(corpus, skip_bad, net.alphabet, net.feature_config)
    groups = [g.strip() for g in group_by.split(",") if g.strip()]
    chosen = [n.strip() for n in layers.split(",")] if layers else None
    try:
        traj = trajectory(
            paths, data, out, chosen, groups, events, alignments, limit, device, resume=resume
        )
    except (CheckpointError, FileExistsError, KeyError, ValueError, OutputError) as exc:
        fail(str(exc).strip("'\""))
    if traj is None:  # not rank 0
        return
    table = Table(title=f"{out}: {traj.sizes['step']} checkpoints")
    for col in ("step", "epoch", "dev CER %", "events"):
        table.add_column(col, justify="right")
    for k in range(traj.sizes["step"]):
        table.add_row(
            str(int(traj["step"].values[k])),
            f"{float(traj['epoch'].values[k]):.2f}",
            f"{100 * float(traj['dev_cer'].values[k]):.1f}",
            str(int(traj["n_events"].values[k])),
        )
    console.print(table)
    wanted = tuple(g for g in ("grapheme", "phoneme") if g in groups)
    sil = silhouette_over_training(traj, wanted, min_count=min_count) if wanted else None
    if sil is not None:
        for g in wanted:
            frame = sil["mean_silhouette"].sel(grouping=g).transpose("layer", "step").to_pandas()
            typer.echo(f"\nmean Silhouette score of {g}s: layer (rows) x step")
            typer.echo(frame.to_string(float_format=lambda v: f"{v:.2f}"))
    settle = settling(traj, threshold)
    frame = settle["settling_step"].to_pandas()
    counts = traj["count"].isel(step=-1).to_series()
    frame = frame[counts.reindex(frame.index).fillna(0).values >= min_count]
    typer.echo(f"\nsettling step (r >= {threshold:g} with the final profile to the end):")
    typer.echo(
        frame.median().to_frame("median over groups").T.to_string(float_format="{:.0f}".format)
    )
    if figures is not None:
        _figures(traj, sil, settle, figures, group)
    console.print(f"trajectory: {out}")


def _figures(traj, sil, settle, folder: Path, group: str) -> None:
    from gradnap.profiling.groupings import split_group
    from gradnap.viz import dynamics as dviz
    from gradnap.viz import save_figure

    if sil is not None:
        save_figure(dviz.silhouette_heatmaps(sil), folder, "silhouette_over_training")
    groupings = {split_group(g)[0] for g in settle["group"].values}
    save_figure(
        dviz.settling_heatmap(settle, "phoneme" if "phoneme" in groupings else None),
        folder,
        "settling_step",
    )
    if "input" in traj.children and group in traj["group"].values:
        ds = traj["input"].to_dataset().assign_coords(dev_cer=traj["dev_cer"])
        fig = dviz.profile_over_training(ds, group)
        save_figure(fig, folder, f"input_over_training_{group.split(':', 1)[-1]}")
    console.print(f"figures: {folder}")
