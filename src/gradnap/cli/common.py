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
NORMALIZE_TEXT_HELP = (
    "Normalize transcripts (lowercase, punctuation dropped, digits spelled out) instead of "
    "refusing utterances with characters outside the alphabet."
)


def fail(message: str) -> None:
    """Print an error (no traceback) and exit with status 1."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(1)


def load_model(
    path: Path | None,
    config: dict | None = None,
    named_ok: bool = False,
    hf_ok: bool = False,
    why: str = "this command takes gradnap (Wav2Letter) checkpoints only",
):
    """A model file (None: the one a result's ``config`` names, else the bundled model),
    or a clear error. A model name (whisper-tiny.en) only where ``named_ok``; a saved
    Hugging Face model directory (returned as its :class:`gradnap.ModelSpec`) only where
    ``hf_ok``; elsewhere ``why`` says why not."""
    from gradnap.models.checkpoint import CheckpointError, load
    from gradnap.models.registry import registered

    if registered(path) and not named_ok:
        fail(f"--model {path}: a pretrained model gradnap loads by name; {why}")
    if path is None and config and config.get("model_path"):
        path = Path(config["model_path"])
        if not path.exists():
            fail(f"the result was made with {path}, which is not there: pass --model")
    if path is not None and not registered(path) and Path(path).is_dir():
        if not hf_ok:
            fail(f"--model {path}: a folder (a saved Hugging Face model?); {why}")
        return load_huggingface(path)
    try:
        return load(path)
    except (CheckpointError, FileNotFoundError) as exc:
        fail(str(exc))


def load_huggingface(path: Path):
    """The :class:`gradnap.ModelSpec` of a saved Hugging Face ``*ForCTC`` model directory
    (safetensors weights only, never remote code), or a clear error."""
    from gradnap.profiling.spec import ModelSpec

    try:
        return ModelSpec.from_huggingface(path)
    except ImportError as exc:
        fail(f"--model {path}: transformers is needed (pip install 'gradnap[hf]'): {exc}")
    except (ValueError, OSError) as exc:
        fail(f"--model {path}: {exc}")


def model_kind(model) -> str:
    """``"token"`` (Whisper), ``"spec"`` (a :class:`gradnap.ModelSpec`, e.g. Hugging Face)
    or ``"wav2letter"``: what the commands branch on."""
    from gradnap.profiling.spec import ModelSpec
    from gradnap.profiling.token_profile import is_token_model

    if is_token_model(model):
        return "token"
    return "spec" if isinstance(model, ModelSpec) else "wav2letter"


def check_device(device: str) -> None:
    """Fail clearly for an unknown device, or CUDA where none is available."""
    from gradnap.options import check_device

    try:
        check_device(device)
    except ValueError as exc:
        fail(str(exc))


def threads(n: int) -> None:
    """Use ``n`` threads (``--threads``), or a clear error."""
    from gradnap.options import set_threads

    try:
        set_threads(n)
    except ValueError as exc:
        fail(str(exc))


def check_out(path: Path, folder: bool = False, **kwargs) -> None:
    """:func:`gradnap.outputs.check_output` (``folder``: :func:`~gradnap.outputs.check_folder`)
    before the work, or a clear error. An existing output is allowed unless ``force=False``
    is passed (train refuses an existing checkpoint itself)."""
    from gradnap.outputs import OutputError, check_folder, check_output

    try:
        (check_folder if folder else check_output)(path, **{"force": True, **kwargs})
    except OutputError as exc:
        fail(str(exc))


def read(path, skip_bad, alphabet=None, feature_config=None, **checks):
    """A corpus, every utterance checked (``checks``: group_by, alignments, limit,
    normalize_text; see :func:`gradnap.data.validate.read_checked`), its skipped
    utterances and warnings printed, or a clear error listing every problem."""
    from gradnap.data.validate import CorpusError, read_checked

    try:
        with _warnings_printed():
            data = read_checked(
                path, alphabet, feature_config, skip_bad=skip_bad, **{"progress": True, **checks}
            )
    except (CorpusError, ValueError) as exc:
        fail(str(exc))
    for problem in data.skipped:
        err.print(f"[yellow]skipped:[/] {problem}", highlight=False)
    return data


def train_dev(corpus: Path, dev: Path | None, skip_bad: bool, normalize_text: bool = False):
    """:func:`gradnap.train.split.train_dev_split`, with its errors, warnings and skipped
    utterances printed."""
    from gradnap.data import CorpusError
    from gradnap.train.split import train_dev_split

    try:
        with _warnings_printed():
            sets = train_dev_split(
                corpus, dev, skip_bad, progress=True, normalize_text=normalize_text
            )
    except CorpusError as exc:
        fail(str(exc))
    for problem in dict.fromkeys(p for s in sets for p in s.skipped):
        err.print(f"[yellow]skipped:[/] {problem}", highlight=False)
    return sets


class _warnings_printed:
    """Warnings raised inside (the reader's, e.g. audio below 16 kHz) printed as
    ``warning: ...`` lines on stderr."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings(record=True)
        self._caught = self._catch.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self._catch.__exit__(*exc)
        for w in self._caught:
            err.print(f"[yellow]warning:[/] {w.message}", highlight=False)
        return False
