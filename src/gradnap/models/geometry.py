"""Receptive fields and gradient-support windows of a stack of 1-D convolutions.

Implements METHOD.md "Sensitivity" (the two widths W_l and RF_l) and the "same" padding
**[choice]**: output length ``ceil(T_in / stride)``, total padding
``max((T_out - 1) * stride + span - T_in, 0)`` with ``floor(total / 2)`` on the left, where
``span = dilation * (kernel - 1) + 1``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ConvSpec:
    """One convolution of the stack: its name and time geometry."""

    name: str
    kernel: int
    stride: int = 1
    dilation: int = 1
    padding: str | int = "same"  # "same" (METHOD.md rule) or symmetric zero padding

    @property
    def span(self) -> int:
        return self.dilation * (self.kernel - 1) + 1

    def out_length(self, t_in: int) -> int:
        if self.padding == "same":
            return math.ceil(t_in / self.stride)
        return (t_in + 2 * int(self.padding) - self.span) // self.stride + 1

    def same_padding(self, t_in: int) -> tuple[int, int]:
        """``(left, right)`` zero padding for an input of ``t_in`` frames."""
        if self.padding != "same":
            return int(self.padding), int(self.padding)
        total = max((self.out_length(t_in) - 1) * self.stride + self.span - t_in, 0)
        return total // 2, total - total // 2


class StackGeometry:
    """Geometry of layers ``input, specs[0].name, ..., specs[-1].name``.

    Layer 0 is the input; layer ``l`` is the output of ``specs[l - 1]``; the last layer is
    the output (logits).

    >>> g = StackGeometry([ConvSpec("conv1", 48, 2)] + [ConvSpec(f"c{i}", 7) for i in range(7)])
    >>> g.receptive_field("c6"), g.output_stride
    (132, 2)
    """

    def __init__(self, specs: Sequence[ConvSpec]):
        if not specs:
            raise ValueError("a stack needs at least one convolution")
        self.specs = tuple(specs)
        self.layer_names = ("input",) + tuple(s.name for s in self.specs)
        if len(set(self.layer_names)) != len(self.layer_names):
            raise ValueError(f"layer names must be unique: {self.layer_names}")

    def index(self, layer: str | int) -> int:
        if isinstance(layer, int):
            if not 0 <= layer < len(self.layer_names):
                raise KeyError(f"layer index {layer} out of range 0..{len(self.specs)}")
            return layer
        try:
            return self.layer_names.index(layer)
        except ValueError:
            raise KeyError(
                f"unknown layer {layer!r}; layers are {', '.join(self.layer_names)}"
            ) from None

    @property
    def output_stride(self) -> int:
        """Input frames per output frame."""
        return math.prod(s.stride for s in self.specs)

    def stride(self, layer: str | int) -> int:
        """Input frames per frame of ``layer``."""
        return math.prod(s.stride for s in self.specs[: self.index(layer)])

    def receptive_field(self, layer: str | int) -> int:
        """RF_l: how many input frames one unit of ``layer`` sees."""
        rf, jump = 1, 1
        for s in self.specs[: self.index(layer)]:
            rf += (s.span - 1) * jump
            jump *= s.stride
        return rf

    def support_width(self, layer: str | int) -> int:
        """W_l: how many frames of ``layer`` one output frame depends on."""
        width = 1
        for s in reversed(self.specs[self.index(layer) :]):
            width = (width - 1) * s.stride + s.span
        return width

    def lengths(self, t_in: int) -> list[int]:
        """Frames of every layer (input first) for an input of ``t_in`` frames."""
        out = [t_in]
        for s in self.specs:
            out.append(s.out_length(out[-1]))
        return out

    def support(self, t: int, layer: str | int, t_in: int) -> tuple[int, int]:
        """Frames ``[start, stop)`` of ``layer`` that output frame ``t`` depends on.

        Not clipped to the utterance: frames outside ``[0, T_l)`` are the zero padding.
        The width ``stop - start`` is always :meth:`support_width`.
        """
        lengths = self.lengths(t_in)
        if not 0 <= t < lengths[-1]:
            raise IndexError(f"output frame {t} outside 0..{lengths[-1] - 1}")
        start, stop = t, t + 1
        for i in range(len(self.specs) - 1, self.index(layer) - 1, -1):
            s = self.specs[i]
            left, _ = s.same_padding(lengths[i])
            start, stop = start * s.stride - left, (stop - 1) * s.stride - left + s.span
        return start, stop

    def table(self) -> list[dict]:
        """One row per layer: kernel, stride, RF_l and W_l."""
        rows = []
        for i, name in enumerate(self.layer_names):
            spec = self.specs[i - 1] if i else None
            rows.append(
                {
                    "layer": name,
                    "kernel": spec.kernel if spec else None,
                    "stride": spec.stride if spec else None,
                    "receptive_field": self.receptive_field(i),
                    "support_width": self.support_width(i),
                }
            )
        return rows
