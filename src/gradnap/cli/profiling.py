"""``gradnap profile`` and ``gradnap summary``: computing and inspecting profiles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gradnap.cli.common import (
    NORMALIZE_TEXT_HELP,
    app,
    check_device,
    console,
    fail,
    load_model,
    read,
    threads,
)
from gradnap.options import DEFAULT_THREADS, THREADS_HELP
from gradnap.profiling.groupings import GROUPINGS, group_coords, needs


@app.command()
def profile(
    out: Annotated[Path, typer.Option(help="Result file (NetCDF) to write.")],
    corpus: Annotated[
        Path | None, typer.Option(help="Corpus folder (default: the bundled evaluation corpus).")
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="Model file, a saved Hugging Face *ForCTC model directory, or a model name "
            "(whisper-tiny.en: token events; default: the bundled model)."
        ),
    ] = None,
    layers: Annotated[
        str | None, typer.Option(help="Comma-separated layers (default: all).")
    ] = None,
    group_by: Annotated[
        str,
        typer.Option(help=f"Comma-separated groupings: {', '.join(GROUPINGS)}."),
    ] = "grapheme",
    alignments: Annotated[
        Path | None, typer.Option(help="Folder of TextGrids (default: beside the audio).")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    limit: Annotated[int | None, typer.Option(help="Profile only the first N utterances.")] = None,
    backend: Annotated[
        str, typer.Option(help="Gradient backend: auto, fast, hf_ctc, generic or reference.")
    ] = "auto",
    variants: Annotated[
        str,
        typer.Option(help="Comma-separated profile variants: gradnap, navai, nap, saliency."),
    ] = "gradnap,navai,nap",
    mask_scale: Annotated[
        str, typer.Option(help="Scale the mask over the whole window or per neuron.")
    ] = "window",
    navai_align: Annotated[
        str, typer.Option(help="NAvAI alignment of hidden layers: gradient or activation_gradient.")
    ] = "gradient",
    sensitivity: Annotated[
        str, typer.Option(help="Gradient of the class's logit or of its log_prob.")
    ] = "logit",
    crop_width: Annotated[
        str, typer.Option(help="support, receptive_field or a number of frames.")
    ] = "support",
    batch_events: Annotated[
        str,
        typer.Option(
            help="Events per batch, or auto (128 on CPU; fills a GPU). Whisper: tokens per "
            "batched backward at most (auto: as many as --max-memory allows)."
        ),
    ] = "auto",
    include_blank: Annotated[bool, typer.Option(help="Blank frames are events too.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Leave out bad utterances (listed).")] = False,
    normalize_text: Annotated[bool, typer.Option(help=NORMALIZE_TEXT_HELP)] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue a killed run from OUT.partial (same settings).")
    ] = False,
    checkpoint_every: Annotated[
        int,
        typer.Option(
            help="Utterances between partial checkpoints (0: none); one is skipped while "
            "saving would take over 5 % of the run's time."
        ),
    ] = 25,
    workers: Annotated[int, typer.Option(help="Feature-extraction worker processes.")] = 0,
    top_events: Annotated[
        int,
        typer.Option(
            help="Per group, layer and neuron keep the N events of largest aligned activation "
            "(to listen to; 0: none)."
        ),
    ] = 5,
    force: Annotated[bool, typer.Option(help="Replace an existing result at OUT.")] = False,
    n_threads: Annotated[int, typer.Option("--threads", help=THREADS_HELP)] = DEFAULT_THREADS,
    max_memory: Annotated[
        float,
        typer.Option(
            help="GB for per-event gradients on the generic path (events per batch); "
            "Whisper: working memory per batched token backward."
        ),
    ] = 2.0,
) -> None:
    """Compute GradNAP, NAvAI and NAP profiles of a model over a corpus.

    Under torchrun (torchrun --nproc-per-node N -m gradnap profile ...) each process
    profiles its own shard of the corpus; rank 0 writes the result."""
    from gradnap.corpus.textgrid import AlignmentError, find_alignment
    from gradnap.models.registry import registered
    from gradnap.options import check_profile_options
    from gradnap.outputs import OutputError, check_output
    from gradnap.profiling import profiles
    from gradnap.profiling.spec import ModelSpec

    groups = [g.strip() for g in group_by.split(",") if g.strip()]
    chosen = [n.strip() for n in layers.split(",")] if layers else None
    width = int(crop_width) if crop_width.isdigit() else crop_width
    try:
        check_profile_options(groups, batch_events, width, device, limit)
        check_output(out, force=force, resume=resume)
    except (ValueError, OutputError) as exc:
        fail(str(exc))
    threads(n_threads)
    token_model = registered(model) is not None  # whisper-tiny.en: token events
    if token_model:
        from gradnap.profiling.groupings import make_groupings
        from gradnap.profiling.token_profile import check_token_groupings, check_token_options

        try:  # before the model loads
            check_token_options(backend, width, include_blank)
            check_token_groupings(make_groupings(groups), "", object(), "")
        except ValueError as exc:
            fail(str(exc))
        net, spec = load_model(model, named_ok=True), None
        alphabet = feature_config = None
    elif model is not None and model.is_dir():  # a saved Hugging Face model (safetensors only)
        net = spec = load_model(model, hf_ok=True)
        alphabet = feature_config = None
    else:
        net = load_model(model)
        spec = ModelSpec.from_wav2letter(net)
        alphabet, feature_config = net.alphabet, net.feature_config
    check_device(device)
    if corpus is None:
        from gradnap.models.checkpoint import DEFAULT_CORPUS as corpus
    data = read(
        corpus, skip_bad, alphabet, feature_config, group_by=groups,
        alignments=alignments, limit=limit, normalize_text=normalize_text,
    )  # fmt: skip
    if token_model:  # Whisper's 30 s window: every file over it named at once
        from gradnap.decode.whisper import check_lengths

        try:
            check_lengths(list(data))
        except ValueError as exc:
            fail(str(exc))
    try:
        if spec is not None:  # a token model checks its layers itself
            spec.check_layers(chosen)
        if needs(groups, "alignment"):
            find_alignment(data[0], alignments, data.root)
        tree = profiles(
            net,
            data,
            out=out,
            layers=chosen,
            group_by=groups,
            device=device,
            alignments=alignments,
            backend=backend,
            crop_width=width,
            limit=limit,
            batch_events=batch_events if batch_events == "auto" else int(batch_events),
            include_blank=include_blank,
            variants=variants,
            mask_scale=mask_scale,
            navai_align=navai_align,
            sensitivity=sensitivity,
            checkpoint_every=checkpoint_every,
            resume=resume,
            workers=workers,
            top_events=top_events,
            max_memory=max_memory * 1e9,
        )
    except AlignmentError as exc:
        fail(
            f"{exc}\n(groupings phoneme, word and manner need TextGrids: pass --alignments "
            "DIR, or make them with 'gradnap align')"
        )
    except (KeyError, ValueError, FileExistsError, OutputError) as exc:
        fail(str(exc).strip("'\""))
    if tree is None:  # not rank 0: rank 0 wrote the result
        return
    console.print(
        f"profiles: {out} ({int(tree['n_events'])} events, {len(tree['group'])} groups, "
        f"layers {', '.join(tree.children)})"
    )


@app.command()
def summary(
    result: Annotated[Path, typer.Argument(help="Profile result (NetCDF).")],
) -> None:
    """Print what a profile result holds: run settings, groups and counts, phone coverage."""

    from gradnap.profiling import load_profiles
    from gradnap.profiling.result import config_of

    try:
        tree = load_profiles(result)
    except (FileNotFoundError, OSError, ValueError) as exc:
        fail(f"{result}: not a readable profile result ({exc})")
    if "config" not in tree.attrs or "n_events" not in tree or "group" not in tree.coords:
        fail(f"{result}: not a gradnap profile result (no config, n_events or group)")
    cfg = config_of(tree)
    console.print(
        f"{result}: {int(tree['n_events'])} events from {cfg.get('utterances')} "
        f"utterances, backend {cfg.get('backend', cfg.get('method'))}, "
        f"layers {', '.join(tree.children)}"
    )
    table = Table(title="groups")
    for col in ("grouping", "groups", "events", "smallest group"):
        table.add_column(col, justify="right")
    groups, groupings, _ = group_coords(tree)
    counts = tree["count"].values
    by = {}
    for g, grouping, n in zip(groups, groupings, counts):
        by.setdefault(grouping, []).append((int(n), g))
    for grouping, items in by.items():
        small = min(items)
        table.add_row(
            grouping, str(len(items)), str(sum(n for n, _ in items)), f"{small[1]} ({small[0]})"
        )
    console.print(table)
    if "phone" in tree.coords:
        cov = Table(title="phoneme coverage: aligned segments with / without an event")
        for col in ("phone", "with events", "without", "share without"):
            cov.add_column(col, justify="right")
        ds = tree.to_dataset()
        for p in ds["phone"].values:
            a = int(ds["segments_with_events"].sel(phone=p))
            b = int(ds["segments_without_events"].sel(phone=p))
            cov.add_row(str(p), str(a), str(b), f"{100 * b / max(a + b, 1):.0f} %")
        console.print(cov)
