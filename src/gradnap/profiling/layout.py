"""Any module's output as ``(batch, channels, time)``: which element, which axis is time.

A layer is named by its dotted module path (``"encoder.layers.3"``). Its module may return
a tensor in any layout, a tuple or a ``ModelOutput``; :class:`Layout` picks the tensor
(``item``), finds its time axis and flattens every other axis but the batch into channels
(a Conv2d front end's ``(B, C, F, T)`` becomes ``(B, C * F, T)``, neuron ``c * F + f``).

The hook of :class:`capture` does not observe the output from the side: it *replaces* it
with a tensor computed from the captured ``(B, C, T)`` one, so gradients with respect to the
captured tensor are the model's own (hooking a ``(B, T, H)`` output and transposing a copy
gives gradients that are silently zero), and a fresh copy goes on to the next module, so an
in-place activation after the layer (``nn.ReLU(inplace=True)``) cannot overwrite it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Layer:
    """A layer by module path, with what cannot be probed declared.

    ``item``: the element of a tuple (int) or ``ModelOutput`` (key) output holding the
    activations (default: the first). ``time_axis``: the time axis of that tensor when two
    probe inputs cannot tell it. ``timing``: ``(frame_ms, offset_ms)``, the frame hop and the
    time of frame 0 (see :mod:`gradnap.profiling.timing`), where it cannot be derived.
    """

    path: str
    item: int | str | None = None
    time_axis: int | None = None
    timing: tuple[float, float] | None = None


class LayoutError(ValueError):
    """A layer or output that cannot be brought to (batch, channels, time); the message names
    the layer and the problem."""


def select(out, item, where: str) -> torch.Tensor:
    """The tensor of a module's output: the output itself, ``out[item]`` of a tuple/list or
    of a ``ModelOutput``/dict (``item`` None: the first element)."""
    if torch.is_tensor(out):
        value = out
    elif isinstance(out, (tuple, list)):
        if not out:
            raise LayoutError(f"{where}: the module returned an empty {type(out).__name__}")
        value = out[item or 0]
    elif isinstance(out, dict):  # ModelOutput is an OrderedDict
        if not out:
            raise LayoutError(f"{where}: the module returned an empty {type(out).__name__}")
        value = out[item] if item is not None else next(iter(out.values()))
    else:
        raise LayoutError(f"{where}: the module returned a {type(out).__name__}, not a tensor")
    if not torch.is_tensor(value):
        raise LayoutError(
            f"{where}: the output is a {type(value).__name__}, not a tensor, after unpacking "
            f"(item {item!r}); give Layer(path, item=...) for the element holding the activations"
        )
    return value


def replace(out, item, value: torch.Tensor):
    """``out`` with the element :func:`select` picked replaced by ``value``."""
    if torch.is_tensor(out):
        return value
    if isinstance(out, (tuple, list)):
        i = item or 0
        parts = list(out)
        parts[i] = value
        return type(out)(parts) if isinstance(out, list) else tuple(parts)
    key = item if item is not None else next(iter(out.keys()))
    out[key] = value
    return out


@dataclass(frozen=True)
class Layout:
    """How one output tensor becomes ``(B, C, T)``: its element, dimension and time axis."""

    item: int | str | None
    ndim: int
    time_axis: int

    @property
    def _perm(self) -> list[int]:
        return [0] + [d for d in range(1, self.ndim) if d != self.time_axis] + [self.time_axis]

    def to_bct(self, value: torch.Tensor) -> torch.Tensor:
        if value.dim() != self.ndim:
            raise LayoutError(f"expected a {self.ndim}-D output, got {tuple(value.shape)}")
        v = value.permute(self._perm)
        return v.reshape(v.shape[0], -1, v.shape[-1])

    def from_bct(self, a: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``a`` (B, C, T) back in ``like``'s layout (a fresh contiguous tensor)."""
        perm = self._perm
        shape = [like.shape[d] for d in perm]
        inverse = [perm.index(d) for d in range(self.ndim)]
        back = a.reshape(shape).permute(inverse)
        return back.clone(memory_format=torch.contiguous_format)


def find_time_axis(short: torch.Tensor, long: torch.Tensor, where: str, declared=None) -> int:
    """The axis (not the batch axis 0) whose length differs between two probe outputs."""
    if short.dim() != long.dim():
        raise LayoutError(f"{where}: {short.dim()}-D and {long.dim()}-D outputs for two inputs")
    if short.dim() < 2:
        raise LayoutError(f"{where}: a {short.dim()}-D output has no time axis")
    if declared is not None:
        axis = declared % short.dim()
        if axis == 0:
            raise LayoutError(f"{where}: time_axis {declared} is the batch axis")
        return axis
    changed = [d for d in range(1, short.dim()) if short.shape[d] != long.shape[d]]
    if len(changed) == 1:
        return changed[0]
    shapes = f"shapes {tuple(short.shape)} and {tuple(long.shape)} for two input lengths"
    if not changed:
        raise LayoutError(
            f"{where}: the time axis cannot be identified: no axis changes length ({shapes}); "
            "is time pooled away?"
        )
    raise LayoutError(
        f"{where}: the time axis is ambiguous, axes {changed} all change length ({shapes}); "
        "declare it with gradnap.Layer(path, time_axis=...)"
    )


class capture:
    """Context manager: forward hooks that store each layer's output as ``(B, C, T)`` and
    pass the model a fresh tensor computed from it; always removed, also on an exception.

    ``layers`` maps names to ``(module, Layout)``; ``store`` receives ``name -> (B, C, T)``.
    With ``raw=True`` (probing) the layouts are ignored and the raw outputs are stored.
    """

    def __init__(self, layers: dict, store: dict, raw: bool = False):
        self.layers, self.store, self.raw, self.handles = layers, store, raw, []

    def _hook(self, name: str, layout: Layout | None) -> Callable:
        def hook(_module, _inputs, out):
            if self.raw or layout is None:
                self.store[name] = out
                return None
            value = select(out, layout.item, name)
            a = layout.to_bct(value)
            self.store[name] = a
            return replace(out, layout.item, layout.from_bct(a, value))

        return hook

    def __enter__(self):
        for name, (module, layout) in self.layers.items():
            self.handles.append(module.register_forward_hook(self._hook(name, layout)))
        return self.store

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()
        self.handles.clear()
        return False


def resolve(model: nn.Module, ref, name: str) -> nn.Module:
    """The module a layer names: a module, or a dotted path in ``model``."""
    if isinstance(ref, nn.Module):
        return ref
    try:
        return model.get_submodule(ref)
    except AttributeError:
        children = ", ".join(n for n, _ in model.named_children())
        raise LayoutError(
            f"layer {name!r}: no module {ref!r} in the model (its top-level modules: {children})"
        ) from None
