"""``gradnap report`` and ``gradnap sanity``: the analyses and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gradnap.cli.common import (
    NORMALIZE_TEXT_HELP,
    app,
    check_out,
    console,
    fail,
    load_model,
    model_kind,
    read,
    threads,
)
from gradnap.options import DEFAULT_THREADS, THREADS_HELP


@app.command()
def sanity(
    out: Annotated[Path, typer.Option(help="Table to write (NetCDF).")],
    model: Annotated[
        Path | None,
        typer.Option(
            help="Model file, saved Hugging Face *ForCTC model directory, or a model name "
            "(whisper-tiny.en: token events; default: the bundled model)."
        ),
    ] = None,
    corpus: Annotated[
        Path | None, typer.Option(help="Corpus folder (default: the bundled evaluation corpus).")
    ] = None,
    layers: Annotated[
        str | None, typer.Option(help="Comma-separated profiled layers (default: all).")
    ] = None,
    group_by: Annotated[
        str | None,
        typer.Option(help="Comma-separated groupings (default: grapheme; Whisper: token)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N utterances.")] = None,
    levels: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated layers to randomize down to, top first (default: every "
            "layer; Whisper: decoder, encoder.layers.3 .. encoder.layers.0, conv2, conv1)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
    normalize_text: Annotated[bool, typer.Option(help=NORMALIZE_TEXT_HELP)] = False,
    variants: Annotated[
        str, typer.Option(help="Comma-separated profile variants compared (gradnap, navai, ...).")
    ] = "gradnap,navai",
    n_threads: Annotated[int, typer.Option("--threads", help=THREADS_HELP)] = DEFAULT_THREADS,
    force: Annotated[bool, typer.Option(help="Replace an existing table at OUT.")] = False,
) -> None:
    """Model-randomization sanity check (Adebayo et al. 2018): Spearman correlation of the
    trained model's profiles with those after randomizing its weights from the top layer
    down, keeping the trained model's events, classes and labels (Whisper: its greedy
    transcript's tokens, teacher-forced; levels: the decoder, then each encoder layer)."""
    from gradnap.analysis.sanity import cascading_randomization
    from gradnap.outputs import OutputError, write_netcdf
    from gradnap.profiling.spec import ModelSpec

    threads(n_threads)
    check_out(out, force=force, what="sanity table", example="sanity.nc")
    net = load_model(model, named_ok=True, hf_ok=True)
    kind = model_kind(net)
    if corpus is None:
        from gradnap.models.checkpoint import DEFAULT_CORPUS as corpus
    chosen = [n.strip() for n in layers.split(",")] if layers else None
    groups = [g.strip() for g in group_by.split(",") if g.strip()] if group_by else None
    if kind == "wav2letter":
        data = read(
            corpus, False, net.alphabet, net.feature_config, limit=limit,
            normalize_text=normalize_text, group_by=groups or ["grapheme"],
        )  # fmt: skip
        spec = ModelSpec.from_wav2letter(net)
    else:
        data = read(
            corpus, False, limit=limit, normalize_text=normalize_text,
            group_by=groups or (["token"] if kind == "token" else ["grapheme"]),
        )  # fmt: skip
        spec = net
    if kind == "token":  # Whisper's 30 s window: every file over it named at once
        from gradnap.decode.whisper import check_lengths

        try:
            check_lengths(list(data))
        except ValueError as exc:
            fail(str(exc))
    try:
        table = cascading_randomization(
            spec,
            data,
            layers=chosen,
            levels=[v.strip() for v in levels.split(",") if v.strip()] if levels else None,
            group_by=groups,
            limit=limit,
            seed=seed,
            variants=[v.strip() for v in variants.split(",") if v.strip()],
        )
    except (KeyError, ValueError) as exc:
        fail(str(exc).strip("'\""))
    try:
        write_netcdf(table, out)  # a full disk or a Ctrl-C: nothing at OUT
    except OutputError as exc:
        fail(str(exc))
    for var in [v for v in table.data_vars if str(v).startswith("spearman_")]:
        frame = table[var].to_pandas()
        frame.columns = [
            c.replace("conv", "c").replace("encoder.layers.", "e") for c in frame.columns
        ]
        typer.echo(f"\n{var.replace('_', ' ')}: randomized down to (rows) x profiled layer")
        typer.echo(frame.to_string(float_format=lambda v: f"{v:.2f}"))
    console.print(f"sanity table: {out}")


@app.command()
def report(
    result: Annotated[Path, typer.Argument(help="Profile result (NetCDF) from 'gradnap profile'.")],
    out: Annotated[Path, typer.Option(help="Folder for the report (index.html inside).")],
    model: Annotated[
        Path | None,
        typer.Option(help="Model for the optimal inputs (default: the one the result names)."),
    ] = None,
    sanity_table: Annotated[
        Path | None, typer.Option("--sanity", help="Table from 'gradnap sanity' to include.")
    ] = None,
    groups: Annotated[
        str | None,
        typer.Option(help="Groups for action potentials and optimal inputs (comma-separated)."),
    ] = None,
    featvis_layers: Annotated[
        str | None, typer.Option(help="Layers for the optimal inputs (comma-separated).")
    ] = None,
    min_count: Annotated[int, typer.Option(help="Fewer events: not clustered, marked.")] = 10,
    max_groups: Annotated[
        int, typer.Option(help="Groups drawn per grouping (those with the most events).")
    ] = 80,
    featvis_steps: Annotated[int, typer.Option(help="Adam steps of the input optimization.")] = 16,
    featvis_lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the optimization's start.")] = 0,
    n_threads: Annotated[int, typer.Option("--threads", help=THREADS_HELP)] = DEFAULT_THREADS,
    force: Annotated[bool, typer.Option(help="Replace a report already in OUT.")] = False,
) -> None:
    """A static HTML report of a profile result: Silhouette scores per layer, every layer's
    and group's profiles, dendrograms, action potentials, optimal inputs, sanity table."""
    import xarray as xr

    from gradnap.profiling import load_profiles
    from gradnap.profiling.result import config_of
    from gradnap.report import ReportOptions, build_report

    threads(n_threads)
    check_out(out, force=force, folder=True)
    try:
        tree = load_profiles(result)
    except (FileNotFoundError, OSError, ValueError) as exc:
        fail(f"{result}: not a readable profile result ({exc})")
    config = config_of(tree)
    # token events (Whisper): no optimal inputs yet; never the bundled model's instead
    token = config.get("event_kind") == "token" and model is None
    net = None if token else load_model(model, config, hf_ok=True)
    if net is not None and model_kind(net) == "spec" and net.stack is None:
        console.print("optimal inputs: none (they need a stack of Conv1d layers)")
        net = None  # e.g. a saved Hugging Face model (the result's model_path)
    table = None
    if sanity_table is not None:
        try:
            table = xr.load_dataset(sanity_table, engine="h5netcdf")
        except (FileNotFoundError, OSError, ValueError) as exc:
            fail(f"{sanity_table}: not a readable sanity table ({exc})")
    options = ReportOptions(
        groups=[g.strip() for g in groups.split(",")] if groups else None,
        featvis_layers=[n.strip() for n in featvis_layers.split(",")] if featvis_layers else None,
        min_count=min_count,
        max_groups=max_groups,
        featvis_steps=featvis_steps,
        featvis_lr=featvis_lr,
        seed=seed,
    )
    try:
        index = build_report(tree, out, net, table, options)
    except (KeyError, ValueError, OSError) as exc:  # OSError: OutputError, one line
        fail(str(exc).strip("'\""))
    console.print(f"report: {index.resolve()}")
