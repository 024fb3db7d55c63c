"""Checking a :class:`~gradnap.profiling.spec.ModelSpec` on probe inputs: the model runs
on two inputs of different lengths made by its front end, and what the outputs show is
recorded in the spec: each layer's layout (the axis whose length follows the input's is
time) and timing, the neuron coordinates of 2-D maps, where the logits are and whether they
come after a log-softmax. Every problem is one :class:`LayoutError` naming the layer.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gradnap.profiling.layout import Layout, LayoutError, capture, find_time_axis, select
from gradnap.profiling.logits import find_logits_before_softmax, is_log_normalized
from gradnap.profiling.timing import LayerTiming, from_probe

LOGITS = "\0logits"  # the hook name of a logits module (never a user layer name)
PROBE_SECONDS = (1.0, 1.5)


def probe_inputs(front_end) -> tuple[torch.Tensor, torch.Tensor]:
    """Two inputs ``(1, C, T)`` of different lengths (:data:`PROBE_SECONDS`) made by
    ``front_end`` from seeded noise."""
    g = torch.Generator().manual_seed(0)
    sr = front_end.sample_rate
    out = []
    for seconds in PROBE_SECONDS:
        wav = 0.1 * torch.randn(int(seconds * sr), generator=g)
        out.append(front_end(wav.numpy(), sr)[None])
    return out[0], out[1]


def validate(spec, inputs) -> None:
    """Run ``spec``'s model on two ``inputs`` of different lengths and set what they
    show: each layer's layout (its time axis: the one whose length follows the input's)
    and timing, the 2-D maps' neuron coordinates, the logits' layout and module
    (before a log-softmax where one is found). Raises a :class:`LayoutError` naming
    the layer and the problem."""
    short, long = inputs
    hooks = {name: (module, None) for name, module in spec.layers.items()}
    out_module = output_module(spec)
    if out_module is not None:
        hooks[LOGITS] = (out_module, None)
    raw = []
    spec.model.eval()
    with torch.no_grad():
        for x in (short, long):
            store: dict = {}
            with capture(hooks, store, raw=True):
                ret = spec.model(spec.model_input(x))
            raw.append((store, ret))
    t_in = (short.shape[-1], long.shape[-1])
    for name, tap in spec.taps.items():
        if name not in raw[0][0]:
            raise LayoutError(f"layer {name!r} ({tap.path}): the module is never called")
        a, b = (select(r[0][name], tap.item, f"layer {name!r}") for r in raw)
        axis = find_time_axis(a, b, f"layer {name!r} ({tap.path})", tap.time_axis)
        spec.layouts[name] = Layout(tap.item, a.dim(), axis)
        if a.dim() == 4:  # (B, C, F, T) -> neuron c * F + f
            sizes = [a.shape[d] for d in range(1, 4) if d != axis]
            idx = np.arange(sizes[0] * sizes[1])
            spec.neuron_coords[name] = {
                "channel": (idx // sizes[1], {"long_name": "channel of the 2-D map"}),
                "bin": (idx % sizes[1], {"long_name": "frequency bin of the 2-D map"}),
            }
        if name not in spec.timing:
            spec.timing[name] = from_probe(spec.hop_seconds, t_in, (a.shape[axis], b.shape[axis]))
    spec.timing.setdefault("input", LayerTiming(spec.hop_seconds, 0.0, False, "front end"))
    logits = [pick_output(spec, store, ret) for store, ret in raw]
    axis = find_time_axis(*logits, "output (logits)")
    others = [d for d in range(1, logits[0].dim()) if d != axis]
    if len(others) != 1:
        raise LayoutError(
            f"output (logits): expected (batch, classes, time) in some order, got "
            f"{tuple(logits[0].shape)}; select the logits with output=..."
        )
    if logits[0].shape[others[0]] != len(spec.labels):
        raise LayoutError(
            f"output (logits): the class axis has {logits[0].shape[others[0]]} classes "
            f"(shape {tuple(logits[0].shape)}) but labels has {len(spec.labels)}"
        )
    spec.output_layout = Layout(None, logits[0].dim(), axis)
    if spec._logits_module is None:
        spec.description.setdefault("sensitivity_from", "logit")
        bct = spec.output_layout.to_bct(logits[0])
        if is_log_normalized(bct):
            found = find_logits_before_softmax(
                spec.model, spec.model_input(short), spec.output_layout, bct
            )
            if found is None:
                spec.description["sensitivity_from"] = (
                    "log-probability (the model's output; the logits before its "
                    "log-softmax could not be reached)"
                )
            else:
                path, spec._logits_module, note = found
                spec.description["sensitivity_from"] = (
                    f"logit: the output of {path}, before the model's log-softmax"
                )
                if note:
                    spec.description["final_activation"] = note


def output_module(spec):
    """The module whose output is the logits (``spec.output`` a path or a module), or
    None."""
    if isinstance(spec.output, str):
        try:
            spec._logits_module = spec.model.get_submodule(spec.output)
            spec.description["sensitivity_from"] = f"logit: the output of {spec.output}"
        except AttributeError:
            pass
    elif isinstance(spec.output, nn.Module):
        spec._logits_module = spec.output
    return spec._logits_module


def pick_output(spec, store, ret) -> torch.Tensor:
    """The logits from a forward's hooked outputs ``store`` or its return value
    ``ret``, as ``spec.output`` says."""
    if spec._logits_module is not None:
        return select(store[LOGITS], None, "output (logits module)")
    out = spec.output
    if callable(out) and not isinstance(out, nn.Module):
        value = out(ret)
    elif isinstance(out, str):
        if isinstance(ret, dict) and out in ret:
            value = ret[out]
        elif hasattr(ret, out):
            value = getattr(ret, out)
        else:
            raise LayoutError(f"output={out!r}: neither a key of the output nor a module")
    elif out is None and isinstance(ret, dict) and "logits" in ret:
        value = ret["logits"]
    else:
        value = select(ret, out, "output (logits)")
    if not torch.is_tensor(value):
        raise LayoutError(f"output (logits): a {type(value).__name__}, not a tensor")
    return value
