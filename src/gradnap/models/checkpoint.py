"""Checkpoint files: weights plus everything needed to use them (config, alphabet, features).

Written atomically (temporary name in the same folder, then rename), so an interrupted
write never leaves a file that looks whole. Training checkpoints add optimizer and
trainer state under ``"train_state"``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from gradnap._version import __version__
from gradnap.atomic import atomic_write
from gradnap.audio.features import FeatureConfig
from gradnap.data.alphabet import Alphabet
from gradnap.models.wav2letter import Wav2Letter, Wav2LetterConfig

FORMAT = "gradnap-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded; the message names the file and the problem."""


def save_checkpoint(
    path: str | Path,
    model: Wav2Letter,
    alphabet: Alphabet,
    feature_config: FeatureConfig,
    train_state: dict | None = None,
    half: bool = False,
    extra: dict | None = None,
) -> Path:
    """Write ``model`` and its settings to ``path`` atomically; return the path. ``extra``
    (plain values) is stored beside them (``train --keep-checkpoints``: ``trajectory``)."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gradnap_version": __version__,
        "arch": "wav2letter",
        "model_config": model.config.to_dict(),
        "alphabet": list(alphabet.symbols),
        "features": feature_config.to_dict(),
        "state_dict": state,
    }
    if train_state is not None:
        payload["train_state"] = train_state
    payload.update(extra or {})
    return atomic_torch_save(payload, path)


def atomic_torch_save(obj, path: str | Path) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then rename it into place."""
    with atomic_write(path, suffix=".tmp") as tmp:
        torch.save(obj, tmp)
    return Path(path)


def read_checkpoint(path: str | Path) -> dict:
    """Load and validate a checkpoint dictionary (tensors on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable checkpoint (corrupt or truncated?): {exc}"
        ) from None
    except Exception as exc:  # pickle errors of several kinds
        raise CheckpointError(f"{path}: not a readable checkpoint: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a gradnap checkpoint")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} (written by gradnap "
            f"{payload.get('gradnap_version', '?')}); this gradnap {__version__} reads "
            f"version {FORMAT_VERSION}"
        )
    if payload.get("arch") != "wav2letter":
        raise CheckpointError(f"{path}: unknown architecture {payload.get('arch')!r}")
    return payload


def model_from_checkpoint(payload: dict, path: str | Path = "<checkpoint>") -> Wav2Letter:
    """Build the model of a checkpoint dictionary and load its weights (float32)."""
    try:
        model = Wav2Letter(Wav2LetterConfig(**payload["model_config"]))
        state = {
            k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()
        }
        model.load_state_dict(state)
    except (TypeError, KeyError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit the stored model: {exc}") from None
    model.alphabet = Alphabet(payload["alphabet"])
    model.feature_config = FeatureConfig.from_dict(payload["features"])
    return model


DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "assets" / "default-model.pt"
DEFAULT_CORPUS = Path(__file__).resolve().parent.parent / "assets" / "eval"


def load(path: str | Path | None = None, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a model for analysis: in eval mode, with ``.alphabet`` and ``.feature_config``.

    With no ``path``, the model bundled with gradnap (trained on its synthetic corpus).
    A registered name (:mod:`gradnap.models.registry`, e.g. ``"whisper-tiny.en"``) wins
    over a file of that name.

    >>> model = gradnap.load()  # doctest: +SKIP
    >>> whisper = gradnap.load("whisper-tiny.en")  # doctest: +SKIP
    """
    from gradnap.models.registry import load_named, registered

    if registered(path):
        return load_named(str(path), device)
    if path is None:
        path = DEFAULT_MODEL
        if not path.is_file():
            raise CheckpointError(
                f"{path}: the bundled default model is missing from this installation"
            )
    model = model_from_checkpoint(read_checkpoint(path), path)
    model.source_path = str(Path(path).resolve())  # provenance, recorded by gradnap.profiles
    return model.to(device).eval()
