"""What the ``gradnap`` subcommands share: the typer app, consoles, errors, and turning
paths into models and corpora with clear messages. Command modules import from here (never
from each other), and :mod:`gradnap.cli.main` imports the command modules."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(
    name="gradnap",
    help="Gradient-adjusted Neuron Activation Profiles for convolutional speech recognition.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> None:
    """Print an error (no traceback) and exit with status 1."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def load_model(path: Path | None, config: dict | None = None, named_ok: bool = False):
    """A model file (None: the one a result's ``config`` names, else the bundled model),
    or a clear error. A model name (whisper-tiny.en) only where ``named_ok``."""
    from gradnap.models.checkpoint import CheckpointError, load
    from gradnap.models.registry import registered

    if registered(path) and not named_ok:
        fail(
            f"--model {path}: works with model-info and eval for now; profiling it needs "
            f"token events for encoder-decoder models, which are not implemented yet"
        )
    if path is None and config and config.get("model_path"):
        path = Path(config["model_path"])
        if not path.is_file():
            fail(f"the result was made with {path}, which is not there: pass --model")
    try:
        return load(path)
    except (CheckpointError, FileNotFoundError) as exc:
        fail(str(exc))


def check_device(device: str) -> None:
    """Fail clearly when ``device`` is CUDA and none is available."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            fail(f"--device {device}: no CUDA device is available here")


def read(path, skip_bad, alphabet=None, feature_config=None):
    """A corpus, its skipped utterances printed, or a clear error."""
    from gradnap.data import CorpusError, read_corpus

    try:
        data = read_corpus(path, alphabet, skip_bad=skip_bad, feature_config=feature_config)
    except CorpusError as exc:
        fail(str(exc))
    for problem in data.skipped:
        err.print(f"[yellow]skipped:[/] {problem}", highlight=False)
    return data


def train_dev(corpus: Path, dev: Path | None, skip_bad: bool):
    """:func:`gradnap.train.split.train_dev_split`, with its errors and skipped utterances
    printed."""
    from gradnap.data import CorpusError
    from gradnap.train.split import train_dev_split

    try:
        sets = train_dev_split(corpus, dev, skip_bad)
    except CorpusError as exc:
        fail(str(exc))
    for problem in dict.fromkeys(p for s in sets for p in s.skipped):
        err.print(f"[yellow]skipped:[/] {problem}", highlight=False)
    return sets
