"""A :class:`~gradnap.profiling.run.Profiler`'s settings turned into what it runs with:
the gradient backend, the crop width of each layer in its own frames, the events per batch,
and the layer descriptions its result records. Each raises one ``ValueError`` naming the
setting and the choices."""

from __future__ import annotations

import torch

from gradnap.profiling import sensitivity as backends
from gradnap.profiling.method import ALIGNMENTS, MASK_SCALES
from gradnap.profiling.spec import ModelSpec

BACKENDS = ("auto", "fast", "generic", "reference", "hf_ctc")


def resolve_backend(spec: ModelSpec, backend: str) -> tuple[str, str | None]:
    """``backend`` (auto, fast, generic, reference, hf_ctc) for ``spec`` and a note saying
    why auto chose it where that is not obvious (:func:`sensitivity.auto_backend`: fast
    for a stack of Conv1d layers, hf_ctc for the tested Hugging Face CTC families, else
    generic with the reason hf_ctc does not apply)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; backends are {BACKENDS}")
    if backend == "auto":
        return backends.auto_backend(spec)
    if backend == "fast" and spec.stack is None:
        raise ValueError("backend 'fast' needs a stack of Conv1d layers (ModelSpec.stack)")
    if backend == "hf_ctc":
        from gradnap.profiling.hf_backward import unsupported

        reason = unsupported(spec)
        if reason is not None:
            raise ValueError(f"backend 'hf_ctc' cannot profile this model: {reason}")
    return backend, None


def check_choices(navai_align: str, sensitivity: str, mask_scale: str) -> None:
    """The variants' and the sensitivity's **[choice]** items are among their choices."""
    if navai_align not in ALIGNMENTS:
        raise ValueError(f"navai_align must be one of {ALIGNMENTS}, not {navai_align!r}")
    if sensitivity not in backends.SENSITIVITIES:
        raise ValueError(
            f"sensitivity must be one of {backends.SENSITIVITIES}, not {sensitivity!r}"
        )
    if mask_scale not in MASK_SCALES:
        raise ValueError(f"mask_scale must be one of {MASK_SCALES}, not {mask_scale!r}")


def crop_frames(spec: ModelSpec, layer: str, crop_width="support") -> int:
    """Crop width of ``layer`` in its frames: ``crop_width`` is "support" (W_l), an int,
    "receptive_field" (the network's receptive field in the layer's frames), or a dict per
    layer of those (missing layers: "support")."""
    w = crop_width.get(layer, "support") if isinstance(crop_width, dict) else crop_width
    if isinstance(w, int):
        return w
    g = spec.geometry
    if w == "support":
        return spec.crop_frames(layer)
    if g is None:
        raise ValueError("crop_width='receptive_field' needs a conv geometry")
    if w == "receptive_field":
        top = len(g.layer_names) - 1
        return -(-g.receptive_field(top) // g.stride(layer))
    raise ValueError(f"crop_width must be 'support', 'receptive_field' or an int, not {w!r}")


def auto_batch_events(spec: ModelSpec, device: torch.device) -> int:
    """Events per batch that fill the device: 128 on the CPU (cache-sized); on a GPU, half
    its free memory over an estimate of one event's working set (its gradient windows,
    masks and crops in every layer, float32), between 128 and 8192."""
    if device.type != "cuda" or spec.geometry is None:
        return 128
    per_event = 0
    for layer in spec.stack.layers if spec.stack else []:
        width = spec.geometry.support_width(layer.name) + layer.spec.kernel
        per_event += 4 * 4 * (layer.conv.in_channels + layer.conv.out_channels) * width
    free, _ = torch.cuda.mem_get_info(device)
    return int(min(8192, max(128, free // 2 // max(per_event, 1))))


def layer_info(spec: ModelSpec, layers, neurons: dict | None = None) -> dict[str, dict]:
    """What the result records of each layer (``build_tree``'s ``layer_info``): ``frame_ms``
    and ``time0_ms`` (the time of frame 0, ms), the kept ``neurons``, and the neurons'
    coordinates (the input's from the front end: mel Hz, MFCC index)."""
    info = {}
    for name in layers:
        info[name] = {
            "frame_ms": 1000 * spec.frame_seconds(name),
            "time0_ms": 1000 * spec.timing[name].offset_seconds,
        }
        if name in (neurons or {}):
            info[name]["neurons"] = list(neurons[name])
        if name in spec.neuron_coords:
            info[name]["neuron_coords"] = spec.neuron_coords[name]
        if name == "input":
            coords = dict(spec.front_end.coords())
            if "frequency" in coords:
                info[name]["frequency"] = coords.pop("frequency")[0]
            if coords:
                info[name]["neuron_coords"] = coords
    return info
