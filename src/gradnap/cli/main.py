"""``gradnap``: command-line entry point (typer). Each subcommand is a thin wrapper."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gradnap._version import __version__
from gradnap.cli.common import (
    NORMALIZE_TEXT_HELP,
    app,
    check_device,
    check_out,
    console,
    err,
    fail,
    load_model,
    read,
    threads,
    train_dev,
)
from gradnap.options import DEFAULT_THREADS, THREADS_HELP


def _version(value: bool) -> None:
    if value:
        console.print(f"gradnap {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    """Gradient-adjusted Neuron Activation Profiles for convolutional speech recognition."""
    import signal
    import sys

    _said.clear()
    signal.signal(signal.SIGINT, _interrupted)
    if not getattr(sys.unraisablehook, "gradnap", False):
        sys.unraisablehook = _unraisable(sys.unraisablehook)


_said: list = []  # the Ctrl-C message is printed once a command


def _interrupted(signum, frame) -> None:
    """Ctrl-C: say so once (typer exits with status 130 on the KeyboardInterrupt)."""
    if not _said:
        _said.append(True)
        if _progress_bar_shown():  # the message on a line of its own, not after the bar
            err.print()
        err.print(
            "[bold red]interrupted[/] (Ctrl-C): stopped; outputs are written whole or not at "
            "all (profile: --resume continues from the last partial checkpoint)",
            highlight=False,
        )
    raise KeyboardInterrupt


def _progress_bar_shown() -> bool:
    import sys

    tqdm = sys.modules.get("tqdm")
    bars = list(getattr(getattr(tqdm, "tqdm", None), "_instances", ()))
    return any(not getattr(bar, "disable", True) for bar in bars)


def _unraisable(previous):
    """A hook for exceptions Python cannot raise (in a ``__del__`` or a weakref callback,
    where a Ctrl-C's KeyboardInterrupt lands now and then, e.g. in h5py or torch): the
    Ctrl-C is sent again 10 ms later from another thread, to land in the command's own code
    (sent at once it landed in this hook, and was lost again), instead of being printed as
    "Exception ignored" and lost; anything else goes to ``previous``."""
    import os
    import signal
    import threading

    def hook(unraisable) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            again = threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGINT))
            again.daemon = True
            again.start()
        else:
            previous(unraisable)

    hook.gradnap = True
    return hook


@app.command("model-info")
def model_info(
    preset: Annotated[str, typer.Option(help="Model preset: paper, mid, small, tiny.")] = "paper",
    model: Annotated[
        Path | None,
        typer.Option(
            help="Checkpoint file, saved Hugging Face *ForCTC model directory, or model name, "
            "e.g. whisper-tiny.en (not --preset)."
        ),
    ] = None,
) -> None:
    """Print parameters, layers (kernel, stride, channels) and receptive field of a model."""
    from gradnap.models import Wav2Letter
    from gradnap.models.checkpoint import CheckpointError, load
    from gradnap.models.registry import registered

    if registered(model):
        from gradnap.cli.whisper import whisper_info

        return whisper_info(load_model(model, named_ok=True))
    if model is not None and model.is_dir():
        from gradnap.cli.huggingface import spec_info

        return spec_info(load_model(model, hf_ok=True), model)
    try:
        net = load(model) if model else Wav2Letter.from_preset(preset)
    except (CheckpointError, KeyError) as exc:
        fail(str(exc).strip("'\""))
    g, cfg = net.geometry, net.config
    channels = [cfg.n_mels] + cfg.layer_channels()
    table = Table(title=f"Wav2Letter preset {cfg.preset!r}" + (f" from {model}" if model else ""))
    for col in (
        "layer",
        "kernel",
        "stride",
        "channels",
        "parameters",
        "RF_l (input frames)",
        "W_l (support, layer frames)",
    ):
        table.add_column(col, justify="right")
    for i, row in enumerate(g.table()):
        params = sum(p.numel() for p in getattr(net, row["layer"]).parameters()) if i else 0
        table.add_row(
            row["layer"],
            str(row["kernel"] or "-"),
            str(row["stride"] or "-"),
            str(channels[i]),
            f"{params:,}",
            str(row["receptive_field"]),
            str(row["support_width"]),
        )
    console.print(table)
    console.print(f"parameters: {net.num_parameters():,} ({net.num_parameters() / 1e6:.2f} M)")
    console.print(f"receptive field: {g.receptive_field(len(g.layer_names) - 1)} input frames")
    console.print(f"output stride: {g.output_stride} input frames")


@app.command()
def train(
    ctx: typer.Context,
    corpus: Annotated[
        Path,
        typer.Option(help="Training corpus folder (a train/ and dev/ inside are used as such)."),
    ],
    out: Annotated[Path, typer.Option(help="Checkpoint file to write (and resume).")],
    preset: Annotated[str, typer.Option(help="Model preset: paper, mid, small, tiny.")] = "mid",
    epochs: Annotated[int, typer.Option(help="Epochs in total (also when resuming).")] = 10,
    resume: Annotated[bool, typer.Option(help="Continue the checkpoint at --out.")] = False,
    dev: Annotated[
        Path | None, typer.Option(help="Dev corpus folder (default: train/dev split of --corpus).")
    ] = None,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 3e-4,
    batch_seconds: Annotated[float, typer.Option(help="Audio seconds per batch.")] = 60.0,
    dropout: Annotated[float, typer.Option(help="Dropout after conv1..conv10.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed (weights, batch order).")] = 0,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 200,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    spec_augment: Annotated[bool, typer.Option(help="SpecAugment time/frequency masking.")] = False,
    lr_schedule: Annotated[str, typer.Option(help="constant, or cosine decay to 0.")] = "constant",
    skip_bad: Annotated[bool, typer.Option(help="Leave out bad utterances (listed).")] = False,
    normalize_text: Annotated[bool, typer.Option(help=NORMALIZE_TEXT_HELP)] = False,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    amp: Annotated[
        bool, typer.Option(help="Mixed precision (bfloat16 on CPU, float16 on CUDA).")
    ] = False,
    n_threads: Annotated[int, typer.Option("--threads", help=THREADS_HELP)] = DEFAULT_THREADS,
    keep_checkpoints: Annotated[
        int,
        typer.Option(help="Keep N models along the way (log-spaced steps) in OUT.steps/."),
    ] = 0,
) -> None:
    """Train a Wav2Letter with CTC on a corpus; checkpoints are written atomically.

    Under torchrun (torchrun --nproc-per-node N -m gradnap train ...) the model is trained
    with DistributedDataParallel, each process taking its part of every batch."""
    from gradnap.models.checkpoint import CheckpointError
    from gradnap.models.registry import registered
    from gradnap.train import TrainConfig
    from gradnap.train import train as run_train

    if registered(preset) or Path(preset).is_dir():
        what = "a saved model folder" if Path(preset).is_dir() else "a pretrained model"
        fail(
            f"--preset {preset}: {what} gradnap loads, not a preset it trains; train trains "
            f"Wav2Letter presets (paper, mid, small, tiny) with CTC from scratch"
        )
    threads(n_threads)
    check_out(
        out, what="checkpoint", example="model.pt"
    )  # (an existing one: train refuses it without --resume)
    train_set, dev_set = train_dev(corpus, dev, skip_bad, normalize_text)
    console.print(
        f"train: {len(train_set)} utterances, {train_set.duration / 3600:.2f} h; "
        f"dev: {len(dev_set)} utterances"
    )
    cfg = TrainConfig(
        preset=preset,
        epochs=epochs,
        lr=lr,
        batch_seconds=batch_seconds,
        dropout=dropout,
        seed=seed,
        checkpoint_every=checkpoint_every,
        max_steps=max_steps,
        spec_augment=spec_augment,
        lr_schedule=lr_schedule,
        amp=amp,
        keep_checkpoints=keep_checkpoints,
    )
    check_device(device)
    try:
        given = [k for k in ctx.params if ctx.get_parameter_source(k).name == "COMMANDLINE"]
        run_train(
            train_set, dev_set, out, cfg, resume, log=console.print, device=device, given=given
        )
    except (CheckpointError, FileExistsError, KeyError) as exc:
        fail(str(exc).strip("'\""))
    console.print(f"checkpoint: {out}")


@app.command("eval")
def evaluate_cmd(
    model: Annotated[
        Path,
        typer.Option(
            help="Checkpoint file, saved Hugging Face *ForCTC model directory, or a model "
            "name (whisper-tiny.en)."
        ),
    ],
    corpus: Annotated[Path, typer.Option(help="Corpus folder.")],
    beam_width: Annotated[
        int,
        typer.Option(
            help="Beam width (0: greedy only; Whisper and Hugging Face models: always greedy)."
        ),
    ] = 32,
    by_speaker: Annotated[
        bool, typer.Option(help="Also report per speaker (Whisper: always).")
    ] = False,
    skip_bad: Annotated[bool, typer.Option(help="Leave out bad utterances (listed).")] = False,
    normalize_text: Annotated[bool, typer.Option(help=NORMALIZE_TEXT_HELP)] = False,
    hyps: Annotated[
        Path | None,
        typer.Option(
            help="Write a TSV: utterance id, reference, hypothesis (beam if run, else greedy; "
            "Whisper: both normalised as scored)."
        ),
    ] = None,
    n_threads: Annotated[int, typer.Option("--threads", help=THREADS_HELP)] = DEFAULT_THREADS,
    force: Annotated[bool, typer.Option(help="Replace an existing --hyps file.")] = False,
) -> None:
    """Print CER and WER of greedy and beam-search decoding on a corpus."""
    from gradnap.decode.evaluate import evaluate
    from gradnap.models.registry import registered

    threads(n_threads)
    if hyps is not None:
        check_out(hyps, force=force, what="hypotheses", example="hyps.tsv")

    if registered(model):
        from gradnap.cli.whisper import whisper_eval

        data = read(corpus, skip_bad, normalize_text=normalize_text)
        ev = whisper_eval(lambda: load_model(model, named_ok=True), data, fail)
        beam_width, by_speaker = 0, True
    elif model.is_dir():  # a saved Hugging Face *ForCTC model: greedy CTC over its labels
        from gradnap.decode.evaluate import evaluate_spec

        spec = load_model(model, hf_ok=True)
        data = read(corpus, skip_bad, normalize_text=normalize_text)
        ev = evaluate_spec(spec, list(data))
        beam_width = 0
    else:
        net = load_model(model)
        data = read(
            corpus, skip_bad, net.alphabet, net.feature_config, normalize_text=normalize_text
        )
        ev = evaluate(net, list(data), net.alphabet, net.feature_config, beam_width or None)
    table = Table(
        title=f"{model} on {corpus} ({len(data)} utterances, {data.duration / 60:.1f} min)"
    )
    for col in ("decoder", "speaker", "CER %", "WER %"):
        table.add_column(col, justify="right")
    for decoder, s in ev.scores().items():
        table.add_row(decoder, "all", f"{100 * s['cer']:.2f}", f"{100 * s['wer']:.2f}")
    if by_speaker:
        for decoder, per in ev.scores(by_speaker=True).items():
            for spk, s in per.items():
                table.add_row(decoder, spk, f"{100 * s['cer']:.2f}", f"{100 * s['wer']:.2f}")
    console.print(table)
    if hyps is not None:
        decoder = "beam" if "beam" in ev.hypotheses else "greedy"
        _write_hyps(hyps, ev.references, ev.hypotheses[decoder])
        console.print(f"hypotheses ({decoder}): {hyps}")


def _write_hyps(path: Path, references: dict[str, str], hypotheses: dict[str, str]) -> None:
    """TSV with a header: utterance id, reference, hypothesis (tabs in text as spaces),
    written whole or not at all."""
    from gradnap.outputs import OutputError, write_bytes

    rows = ["id\treference\thypothesis"]
    for uid, ref in references.items():
        hyp = hypotheses[uid]
        rows.append("\t".join(t.replace("\t", " ") for t in (uid, ref, hyp)))
    try:
        write_bytes(path, ("\n".join(rows) + "\n").encode("utf-8"))
    except OutputError as exc:
        fail(str(exc))


@app.command()
def synth(
    out: Annotated[Path | None, typer.Option(help="Corpus folder to write.")] = None,
    voices: Annotated[
        str | None, typer.Option(help="Comma-separated voice names (default: all available).")
    ] = None,
    list_voices: Annotated[
        bool, typer.Option("--list-voices", help="List the voices, and why any is unavailable.")
    ] = False,
    sentences: Annotated[int | None, typer.Option(help="Use only this many sentences.")] = None,
    held_out: Annotated[str, typer.Option(help="Voice kept out of train and dev.")] = "flite-rms",
    seed: Annotated[int, typer.Option(help="Random seed (sentence split, voices, speed).")] = 0,
    jobs: Annotated[int, typer.Option(help="Parallel worker processes.")] = 1,
    non_free: Annotated[
        bool,
        typer.Option(help="Opt in to the MBROLA and pico voices (non-free licences)."),
    ] = False,
) -> None:
    """Synthesize a multi-speaker corpus with exact phone timings (TextGrids), offline.

    Splits train/dev/test by sentence and keeps one person (--held-out) for
    test-unseen-voice only. A rerun with the same options completes an interrupted run.
    """
    from gradnap.corpus.engines import EngineError
    from gradnap.corpus.synth import synthesize_corpus
    from gradnap.corpus.voices import VOICES

    if out is None or list_voices:
        table = Table(title="voices")
        for col in ("voice", "engine", "person", "status"):
            table.add_column(col)
        for v in VOICES:
            status = v.unavailable() or "available"
            if v.non_free and status == "available":
                status = "available with --non-free (licence forbids use in a sold product)"
            table.add_row(v.name, f"{v.engine} {v.engine_voice}", v.person, status)
        console.print(table)
        if out is None and not list_voices:
            fail("give --out DIR to synthesize (the table lists the voices)")
        return
    chosen = [v.strip() for v in voices.split(",") if v.strip()] if voices else None
    try:
        manifest = synthesize_corpus(
            out, chosen, held_out, sentences, seed, jobs, non_free=non_free
        )
    except (EngineError, KeyError, ValueError) as exc:
        fail(str(exc).strip("'\""))
    for split, c in manifest["splits"].items():
        console.print(f"{split}: {c['utterances']} utterances, {c['hours']:.2f} h")
    if manifest["failed"]:
        err.print(f"[yellow]{len(manifest['failed'])} utterance(s) failed:[/]")
        for f in manifest["failed"]:
            err.print(f"  {f['uid']}: {f['error']}", highlight=False)
    console.print(f"corpus: {out} (manifest {out / 'corpus.json'})")


@app.command()
def align(
    corpus: Annotated[Path, typer.Option(help="Corpus folder (reader layout).")],
    out: Annotated[
        Path | None, typer.Option(help="Folder for the TextGrids (default: beside the audio).")
    ] = None,
    skip_bad: Annotated[bool, typer.Option(help="Leave out bad utterances (listed).")] = False,
    force: Annotated[bool, typer.Option(help="Replace existing TextGrids.")] = False,
) -> None:
    """Force-align a corpus with pocketsphinx (en-us), writing words/phones TextGrids."""
    from gradnap.corpus.align import align_corpus

    if out is not None:
        check_out(out, folder=True, what="TextGrids")
    data = read(corpus, skip_bad)
    try:
        written, failures, oov = align_corpus(data, out, force=force)
    except FileExistsError as exc:
        fail(str(exc))
    if oov:
        console.print(f"{len(oov)} word(s) not in the dictionary, pronounced by the G2P:")
        for word, phones in sorted(oov.items()):
            console.print(f"  {word}: {phones}", highlight=False)
    for uid, why in failures:
        err.print(f"[yellow]not aligned:[/] {uid}: {why}", highlight=False)
    console.print(
        f"aligned {written} of {len(data)} utterances"
        + (f" into {out}" if out else " (TextGrids beside the audio)")
    )
    if not written:
        fail("no utterance was aligned")


@app.command()
def export(
    model: Annotated[Path, typer.Option(help="Training checkpoint.")],
    out: Annotated[Path, typer.Option(help="Model file to write (weights and settings).")],
    half: Annotated[bool, typer.Option(help="Store weights in half precision.")] = True,
    force: Annotated[bool, typer.Option(help="Replace an existing file at OUT.")] = False,
) -> None:
    """Write a model file without optimizer state (what gradnap.load() reads).

    A checkpoint kept along training (train --keep-checkpoints) keeps its step, epoch and
    dev CER, so exported trajectories still work with gradnap dynamics."""
    from gradnap.models.checkpoint import read_checkpoint, save_checkpoint
    from gradnap.models.registry import registered

    if registered(model):
        fail(
            f"--model {model}: a pretrained model gradnap loads by name from its own files; "
            f"export writes Wav2Letter checkpoints only (there is nothing to export)"
        )
    check_out(out, force=force, what="model file", example="model.pt")
    net = load_model(
        model,
        why="export writes Wav2Letter checkpoints only; a saved Hugging Face model is "
        "already what gradnap loads (there is nothing to export)",
    )
    info = read_checkpoint(model).get("trajectory")
    extra = {"trajectory": info} if info is not None else None
    try:
        save_checkpoint(out, net, net.alphabet, net.feature_config, half=half, extra=extra)
    except OSError as exc:  # a full disk: atomic_write leaves nothing behind
        fail(f"{out}: could not be written ({exc.strerror or exc}); nothing was left behind")
    console.print(f"model: {out} ({out.stat().st_size / 1e6:.1f} MB)")


# the profiling commands live in their own module; importing it registers them
from gradnap.cli import analysis as _analysis  # noqa: E402, F401
from gradnap.cli import dynamics as _dynamics  # noqa: E402, F401
from gradnap.cli import profiling as _profiling  # noqa: E402, F401

if __name__ == "__main__":
    app()
