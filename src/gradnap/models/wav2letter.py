"""The fully convolutional Wav2Letter acoustic model (METHOD.md, model table).

Eleven 1-D convolutions with "same" zero padding, ReLU after conv1..conv10, graphemes
plus CTC blank out. Every layer is a submodule with a stable name (``conv1`` .. ``conv11``)
whose output is the layer's activation ``A_l`` (after the nonlinearity).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from gradnap.models.geometry import ConvSpec, StackGeometry

# (kernel, stride) per layer, from the paper's table; channels come from the preset.
LAYOUT = [(48, 2)] + [(7, 1)] * 7 + [(32, 1), (1, 1), (1, 1)]

# preset -> (channels of conv1..conv8, channels of conv9..conv10)
PRESETS: dict[str, tuple[int, int]] = {
    "paper": (250, 2000),  # 24.66 M parameters
    "mid": (128, 1000),  # 6.7 M
    "small": (64, 256),  # 1.2 M
    "tiny": (16, 32),  # for tests
}


@dataclass(frozen=True)
class Wav2LetterConfig:
    """Architecture of a :class:`Wav2Letter` (stored in checkpoints)."""

    preset: str = "paper"
    n_mels: int = 128
    n_classes: int = 29
    channels: int = 250
    wide_channels: int = 2000
    dropout: float = 0.0

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> Wav2LetterConfig:
        if preset not in PRESETS:
            raise KeyError(f"unknown preset {preset!r}; presets are {', '.join(PRESETS)}")
        channels, wide = PRESETS[preset]
        return replace(cls(preset=preset, channels=channels, wide_channels=wide), **overrides)

    def to_dict(self) -> dict:
        return asdict(self)

    def layer_channels(self) -> list[int]:
        return [self.channels] * 8 + [self.wide_channels] * 2 + [self.n_classes]


class SameConv1d(nn.Module):
    """``nn.Conv1d`` with the "same" zero padding of :class:`ConvSpec` (computed per input)."""

    def __init__(self, spec: ConvSpec, in_channels: int, out_channels: int):
        super().__init__()
        self.spec = spec
        self.conv = nn.Conv1d(
            in_channels, out_channels, spec.kernel, stride=spec.stride, dilation=spec.dilation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.spec.same_padding(x.shape[-1])))


class ConvBlock(nn.Module):
    """One layer: same-padded convolution, then activation (and dropout when training)."""

    def __init__(self, spec, in_channels, out_channels, activation: bool, dropout: float):
        super().__init__()
        self.conv = SameConv1d(spec, in_channels, out_channels)
        self.activation = nn.ReLU() if activation else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.activation(self.conv(x)))


class Wav2Letter(nn.Module):
    """Wav2Letter: ``(batch, n_mels, T)`` features to ``(batch, n_classes, ceil(T/2))`` logits.

    >>> model = Wav2Letter.from_preset("tiny")
    >>> model(torch.zeros(1, 128, 101)).shape
    torch.Size([1, 29, 51])
    """

    def __init__(self, config: Wav2LetterConfig | None = None):
        super().__init__()
        self.config = config or Wav2LetterConfig()
        specs = [ConvSpec(f"conv{i + 1}", k, s) for i, (k, s) in enumerate(LAYOUT)]
        self.geometry = StackGeometry(specs)
        in_ch = self.config.n_mels
        for i, (spec, out_ch) in enumerate(zip(specs, self.config.layer_channels())):
            last = i == len(specs) - 1
            block = ConvBlock(spec, in_ch, out_ch, not last, 0.0 if last else self.config.dropout)
            self.add_module(spec.name, block)
            in_ch = out_ch

    @classmethod
    def from_preset(cls, preset: str = "paper", **overrides) -> Wav2Letter:
        """Build a model from a preset name (``paper``, ``mid``, ``small``, ``tiny``)."""
        return cls(Wav2LetterConfig.from_preset(preset, **overrides))

    @property
    def layer_names(self) -> tuple[str, ...]:
        """``("input", "conv1", ..., "conv11")``."""
        return self.geometry.layer_names

    def layers(self) -> list[tuple[str, nn.Module]]:
        """The named layer modules, bottom to top (the input has none)."""
        return [(name, getattr(self, name)) for name in self.layer_names[1:]]

    def output_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor:
        """Output frames for each input length (``ceil(T / output_stride)``)."""
        s = self.geometry.output_stride
        return torch.div(input_lengths + s - 1, s, rounding_mode="floor")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.config.n_mels:
            raise ValueError(
                f"expected (batch, {self.config.n_mels}, time) features, got {tuple(x.shape)}"
            )
        for _, layer in self.layers():
            x = layer(x)
        return x

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
