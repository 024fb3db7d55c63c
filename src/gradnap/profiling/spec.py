"""What gradnap needs to know about a model to profile it."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from gradnap.audio.features import FeatureConfig
from gradnap.models.geometry import StackGeometry
from gradnap.profiling.stack import ConvStack


@dataclass
class ModelSpec:
    """A model and its description.

    ``layers`` maps layer names, bottom to top, to the modules whose outputs are the
    activations ``A_l`` as ``(batch, channels, time)``; the last one gives the logits
    ``(batch, classes, time)``. ``labels`` names the output classes (``labels[blank]`` is
    the CTC blank). ``hop_seconds`` is the input frame hop and ``geometry`` (optional) the
    receptive-field geometry, which gives the gradient-support windows; ``stack`` (optional)
    enables the fast exact path.

    >>> spec = ModelSpec.from_wav2letter(gradnap.load("model.pt"))  # doctest: +SKIP
    """

    model: nn.Module
    layers: dict[str, nn.Module]
    labels: list[str]
    blank: int = 0
    hop_seconds: float = 0.01
    geometry: StackGeometry | None = None
    stack: ConvStack | None = None
    feature_config: FeatureConfig | None = None
    description: dict = field(default_factory=dict)

    @classmethod
    def from_wav2letter(cls, model) -> ModelSpec:
        stack = ConvStack.from_wav2letter(model)
        labels = (
            list(model.alphabet.symbols)
            if hasattr(model, "alphabet")
            else ["<blank>", " ", "'"] + [chr(ord("a") + i) for i in range(26)]
        )
        fcfg = getattr(model, "feature_config", None) or FeatureConfig()
        return cls(
            model,
            dict(model.layers()),
            labels,
            0,
            fcfg.hop_seconds,
            model.geometry,
            stack,
            fcfg,
            {"arch": "wav2letter", **model.config.to_dict()},
        )

    @classmethod
    def from_sequential(
        cls,
        model: nn.Sequential,
        labels: list[str],
        blank: int = 0,
        hop_seconds: float = 0.01,
        names: list[str] | None = None,
    ) -> ModelSpec:
        """A user model made of ``Conv1d`` and element-wise activations (fast path)."""
        stack = ConvStack.from_sequential(model, names)
        layers = {layer.name: layer.module for layer in stack.layers}
        return cls(
            model,
            layers,
            list(labels),
            blank,
            hop_seconds,
            stack.geometry,
            stack,
            None,
            {"arch": "sequential"},
        )

    @property
    def layer_names(self) -> list[str]:
        return ["input"] + list(self.layers)

    @property
    def output_stride(self) -> int:
        if self.geometry is None:
            raise ValueError("the model's output stride is unknown: give a geometry")
        return self.geometry.output_stride

    def check_layers(self, names) -> list[str]:
        """Validate requested layer names (``None`` means all); clear error otherwise."""
        if names is None:
            return self.layer_names
        unknown = [n for n in names if n not in self.layer_names]
        if unknown:
            raise KeyError(
                f"unknown layer(s) {', '.join(map(repr, unknown))}; layers are "
                f"{', '.join(self.layer_names)}"
            )
        return [n for n in self.layer_names if n in names]

    def forward_with_activations(self, x: torch.Tensor):
        """The model's own forward on ``(1, F, T)`` with hooks that keep every ``A_l``.

        Hooks are removed on exit, also on an exception. Returns ``(logits, {name: A_l})``.
        """
        acts: dict[str, torch.Tensor] = {}
        with capture(self.layers, acts):
            logits = self.model(x)
        return logits, acts


class capture:
    """Context manager: forward hooks that store each named module's output; always removed."""

    def __init__(self, modules: dict[str, nn.Module], store: dict):
        self.modules, self.store, self.handles = modules, store, []

    def __enter__(self):
        for name, module in self.modules.items():
            self.handles.append(
                module.register_forward_hook(
                    lambda _m, _i, out, name=name: self.store.__setitem__(name, out)
                )
            )
        return self.store

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles.clear()
        return False
