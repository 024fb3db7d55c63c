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
    path: str = ""

    def __post_init__(self):
        self.conv_module = self.module  # the module whose output is Z (conv, or its BatchNorm)
        self.conv_module_path = self.path

    def preactivation(self, h: torch.Tensor) -> torch.Tensor:
        """``Z = conv(pad(h))`` for ``h`` ``(batch, C_in, T)``, with the layer's own padding."""
        return F.conv1d(
            F.pad(h, self.spec.same_padding(h.shape[-1])),
            self.conv.weight,
            self.conv.bias,
            stride=self.spec.stride,
            dilation=self.spec.dilation,
            groups=self.conv.groups,
        )


class ConvStack:
    """Bottom-to-top convolution layers of a model, with their time geometry."""

    def __init__(self, layers: list[ConvLayer]):
        self.layers = layers
        self.notes: dict[str, str] = {}
        self.geometry = StackGeometry([layer.spec for layer in layers])

    @classmethod
    def from_wav2letter(cls, model) -> ConvStack:
        layers = []
        for spec, (name, block) in zip(model.geometry.specs, model.layers()):
            act = None if isinstance(block.activation, nn.Identity) else block.activation
            layers.append(ConvLayer(name, block.conv.conv, spec, act, block))
        return cls(layers)

    @classmethod
    def from_sequential(cls, model: nn.Module, names: list[str] | None = None) -> ConvStack:
        """Read ``Conv1d`` (+ eval-mode ``BatchNorm1d``, folded into it) (+ one element-wise
        activation) groups from an ``nn.Sequential`` (nested ones flattened) or a model
        holding one as ``acoustic_model`` (torchaudio's ``Wav2Letter``: its final ReLU after
        the class convolution is left out, so the logits are the class scores before it and
        before the model's functional ``log_softmax``); dropout is skipped."""
        notes: dict[str, str] = {}
        wrapper = not isinstance(model, nn.Sequential)
        if wrapper:
            body = getattr(model, "acoustic_model", None)
            if not isinstance(body, nn.Sequential):
                raise ValueError(
                    f"{type(model).__name__}: from_sequential takes an nn.Sequential or a "
                    "model with an nn.Sequential acoustic_model (torchaudio's Wav2Letter)"
                )
            prefix = "acoustic_model"
        else:
            body, prefix = model, ""
        layers, pending = [], None
        for path, m in _flatten(body, prefix):
            if isinstance(m, nn.Conv1d):
                if pending is not None:
                    layers.append(pending)
                pending = ConvLayer(
                    f"conv{len(layers) + 1}", m, _conv_spec(m, path, len(layers)), None, m
                )
                pending.path = pending.conv_module_path = path
            elif isinstance(m, nn.BatchNorm1d) and pending is not None:
                if m.training or not m.track_running_stats:
                    raise ValueError(f"{path}: BatchNorm1d must be in eval mode to be folded")
                if pending.activation is not None:
                    raise ValueError(f"{path}: BatchNorm1d after the activation is not supported")
                pending.conv = _fold_batchnorm(pending.conv, m)
                pending.module, pending.conv_module, pending.path = m, m, path
                pending.conv_module_path = path
                notes[f"{path}"] = "eval BatchNorm1d folded into the convolution before it"
            elif isinstance(m, ELEMENTWISE) and pending is not None:
                if pending.activation is not None:
                    raise ValueError(f"{path}: two activations after one convolution")
                pending.activation = None if isinstance(m, nn.Identity) else m
                pending.module, pending.path = m, path
            elif isinstance(m, nn.Dropout):
                continue
            else:
                raise ValueError(
                    f"{path} ({type(m).__name__}) is not a Conv1d, an eval BatchNorm1d, an "
                    "element-wise activation or dropout"
                )
        if pending is not None:
            layers.append(pending)
        if not layers:
            raise ValueError("no Conv1d in the model")
        top = layers[-1]
        if wrapper and top.activation is not None:
            notes["final_activation"] = (
                f"the {type(top.activation).__name__} after the class convolution and the "
                "model's log_softmax are left out: sensitivities and classes from the class "
                "convolution's output"
            )
            top.activation, top.module = None, top.conv_module
            top.path = top.conv_module_path
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
        stack = cls(layers)
        stack.notes = notes
        return stack

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


def _flatten(module: nn.Sequential, prefix: str):
    """``(dotted path, module)`` of the leaves of nested Sequentials, in order."""
    for name, m in module.named_children():
        path = f"{prefix}.{name}" if prefix else name
        if isinstance(m, nn.Sequential):
            yield from _flatten(m, path)
        else:
            yield path, m


def _conv_spec(m: nn.Conv1d, path: str, index: int) -> ConvSpec:
    if isinstance(m.padding, str):
        padding = "same" if m.padding == "same" else 0
        if m.padding == "same" and m.stride[0] != 1:
            raise ValueError(f"{path}: padding='same' needs stride 1")
    else:
        padding = int(m.padding[0])
    if m.padding_mode != "zeros":
        raise ValueError(f"{path}: only zero padding is supported")
    return ConvSpec(f"conv{index + 1}", m.kernel_size[0], m.stride[0], m.dilation[0], padding)


def _fold_batchnorm(conv: nn.Conv1d, bn: nn.BatchNorm1d) -> nn.Conv1d:
    """A new convolution equal to ``bn(conv(x))`` for an eval-mode ``bn`` (float64 fold)."""
    folded = nn.Conv1d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        True,
        device=conv.weight.device,
    )
    with torch.no_grad():
        scale = (bn.weight.double() if bn.affine else 1) / torch.sqrt(
            bn.running_var.double() + bn.eps
        )
        bias = conv.bias.double() if conv.bias is not None else 0
        shift = (bias - bn.running_mean.double()) * scale
        if bn.affine:
            shift = shift + bn.bias.double()
        folded.weight.copy_((conv.weight.double() * scale[:, None, None]).float())
        folded.bias.copy_(shift.float())
    return folded.requires_grad_(False)


def _activation_and_derivative(act, z: torch.Tensor):
    if isinstance(act, nn.ReLU):
        return torch.relu(z), (z > 0).to(z.dtype)
    with torch.enable_grad():
        zz = z.detach().requires_grad_(True)
        out = act(zz)
        (d,) = torch.autograd.grad(out.sum(), zz)
    return out.detach(), d
