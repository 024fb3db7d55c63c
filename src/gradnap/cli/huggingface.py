"""``model-info`` for a :class:`gradnap.ModelSpec` (``--model DIR``: a saved Hugging Face
``*ForCTC`` model)."""

from __future__ import annotations

import numpy as np
import torch
from rich.table import Table

from gradnap.cli.common import console


def spec_info(spec, source) -> None:
    """Print each profiled layer (module path and class, channels, parameters, frame hop
    and the time of frame 0, crop width), the labels and the front end. Channels and frames
    come from one forward of 1 s of silence."""
    front = spec.front_end
    rate = getattr(front, "sample_rate", 16000)
    x = spec.front_end(np.zeros(rate, dtype=np.float32), rate)
    with torch.no_grad():
        logits, acts = spec.forward_with_activations(x[None])
    table = Table(title=f"{source}: {type(spec.model).__name__} ({spec.description.get('arch')})")
    for col in ("layer", "module", "kind", "channels", "parameters", "frame", "frame 0 at",
                "crop"):  # fmt: skip
        table.add_column(col, justify="right")

    def timing(name):
        t = spec.timing.get(name)
        if t is None:
            return "-", "-", "-"
        crop = f"{spec.crop_frames(name)} frames" if name != "output" else "-"
        return f"{1000 * t.frame_seconds:g} ms", f"{1000 * t.offset_seconds:g} ms", crop

    table.add_row("input", "-", front.name, str(x.shape[0]), "0", *timing("input"))
    for name, module in spec.layers.items():
        n = sum(p.numel() for p in module.parameters())
        table.add_row(name, spec.taps[name].path, type(module).__name__,
                      str(acts[name].shape[1]), f"{n:,}", *timing(name))  # fmt: skip
    console.print(table)
    total = sum(p.numel() for p in spec.model.parameters())
    console.print(f"parameters: {total:,} ({total / 1e6:.2f} M)")
    shown = ", ".join("<space>" if s == " " else s for s in spec.labels)
    console.print(
        f"labels ({len(spec.labels)}, blank {spec.labels[spec.blank]!r} = {spec.blank}): {shown}",
        highlight=False,
    )
    console.print(f"front end: {front.to_dict()}", highlight=False)
    console.print(f"output: {logits.shape[1]} classes x {logits.shape[2]} frames per second")
