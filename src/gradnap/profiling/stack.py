"""A model as a stack of 1-D convolutions with element-wise activations.

This is what the fast exact sensitivity path needs (METHOD.md "Sensitivity"): each layer's
convolution weights, its zero padding and the derivative of its activation. Wav2Letter
presets describe themselves; :meth:`ConvStack.from_sequential` reads an ``nn.Sequential``
of ``Conv1d`` and activation modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gradnap.models.geometry import ConvSpec, StackGeometry

ELEMENTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.ELU,
    nn.SiLU,
    nn.Softplus,
    nn.Hardtanh,
    nn.ReLU6,
    nn.Identity,
)


@dataclass
class ConvLayer:
    """One layer: ``A = activation(conv(pad(A_below)))``; ``module``'s output is ``A``."""

    name: str
    conv: nn.Conv1d
    spec: ConvSpec
    activation: Callable[[torch.Tensor], torch.Tensor] | None
    module: nn.Module

    def preactivation(self, h: torch.Tensor) -> torch.Tensor:
        """``Z = conv(pad(h))`` for ``h`` ``(batch, C_in, T)``, with the layer's own padding."""
        return F.conv1d(
            F.pad(h, self.spec.same_padding(h.shape[-1])),
            self.conv.weight,
            self.conv.bias,
            stride=self.spec.stride,
            dilation=self.spec.dilation,
        )


class ConvStack:
    """Bottom-to-top convolution layers of a model, with their time geometry."""

    def __init__(self, layers: list[ConvLayer]):
        for layer in layers:
            if layer.conv.groups != 1:
                raise ValueError(f"{layer.name}: grouped convolutions are not supported")
        self.layers = layers
        self.geometry = StackGeometry([layer.spec for layer in layers])

    @classmethod
    def from_wav2letter(cls, model) -> ConvStack:
        layers = []
        for spec, (name, block) in zip(model.geometry.specs, model.layers()):
            act = None if isinstance(block.activation, nn.Identity) else block.activation
            layers.append(ConvLayer(name, block.conv.conv, spec, act, block))
        return cls(layers)

    @classmethod
    def from_sequential(cls, model: nn.Sequential, names: list[str] | None = None) -> ConvStack:
        """Read ``Conv1d`` (+ one element-wise activation) pairs; dropout is skipped."""
        layers, pending = [], None
        modules = list(model)
        for i, m in enumerate(modules):
            if isinstance(m, nn.Conv1d):
                if pending is not None:
                    layers.append(pending)
                if isinstance(m.padding, str):
                    padding = "same" if m.padding == "same" else 0
                    if m.padding == "same" and m.stride[0] != 1:
                        raise ValueError("padding='same' needs stride 1")
                else:
                    padding = int(m.padding[0])
                if m.padding_mode != "zeros":
                    raise ValueError(f"conv {i}: only zero padding is supported")
                spec = ConvSpec(
                    f"conv{len(layers) + 1}", m.kernel_size[0], m.stride[0], m.dilation[0], padding
                )
                pending = ConvLayer(spec.name, m, spec, None, m)
            elif isinstance(m, ELEMENTWISE) and pending is not None:
                if pending.activation is not None:
                    raise ValueError(f"module {i}: two activations after one convolution")
                pending.activation = None if isinstance(m, nn.Identity) else m
                pending.module = m
            elif isinstance(m, nn.Dropout):
                continue
            else:
                raise ValueError(
                    f"module {i} ({type(m).__name__}) is not a Conv1d, an "
                    "element-wise activation or dropout"
                )
        if pending is not None:
            layers.append(pending)
        if names is not None:
            if len(names) != len(layers):
                raise ValueError(f"{len(names)} names for {len(layers)} layers")
            for layer, name in zip(layers, names):
                layer.name = name
                layer.spec = ConvSpec(
                    name,
                    layer.spec.kernel,
                    layer.spec.stride,
                    layer.spec.dilation,
                    layer.spec.padding,
                )
        return cls(layers)

    def forward_record(self, x: torch.Tensor):
        """Run the stack on ``(1, F, T)``; return activations ``[X, A_1, ..., A_L]`` and the
        activation derivatives ``[None, dA_1/dZ_1, ...]`` (None where there is no
        activation), each ``(C_l, T_l)``."""
        acts, derivs = [x[0]], [None]
        h = x
        for layer in self.layers:
            z = layer.preactivation(h)
            if layer.activation is None:
                h, d = z, None
            else:
                h, d = _activation_and_derivative(layer.activation, z)
            acts.append(h[0])
            derivs.append(None if d is None else d[0])
        return acts, derivs


def _activation_and_derivative(act, z: torch.Tensor):
    if isinstance(act, nn.ReLU):
        return torch.relu(z), (z > 0).to(z.dtype)
    with torch.enable_grad():
        zz = z.detach().requires_grad_(True)
        out = act(zz)
        (d,) = torch.autograd.grad(out.sum(), zz)
    return out.detach(), d
