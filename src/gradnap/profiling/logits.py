"""Logits behind a log-softmax: when a model returns log-probabilities, the sensitivities
are taken from the logits before it where a module returns them (METHOD.md "Sensitivity":
back-propagated from the logits **[choice]**)."""

from __future__ import annotations

import torch
from torch import nn

from gradnap.profiling.layout import Layout, LayoutError
from gradnap.profiling.stack import ELEMENTWISE


def is_log_normalized(z: torch.Tensor) -> bool:
    """Whether ``z`` (B, K, T) holds log-probabilities over K (logsumexp 0 everywhere)."""
    return bool(torch.logsumexp(z.double(), 1).abs().max() < 1e-4)


def find_logits_before_softmax(model: nn.Module, model_input, layout: Layout, log_probs):
    """The last module (a leaf where one fits) whose output, under a log-softmax over the
    classes, gives the model's ``log_probs`` (B, K, T); a final element-wise activation
    (torchaudio's ReLU after the class convolution) is stepped back over to the layer
    before it. Returns ``(path, module, note)`` or None."""
    modules = {n: m for n, m in model.named_modules() if n}
    store: dict = {}
    order: list[str] = []

    def keep(name):
        def hook(_m, _i, out):
            order.append(name)
            store[name] = out

        return hook

    hooks = [m.register_forward_hook(keep(name)) for name, m in modules.items()]
    try:
        with torch.no_grad():
            model(model_input)
    finally:
        for h in hooks:
            h.remove()
    found = None
    for name in reversed(order):
        o = store[name]
        if not torch.is_tensor(o) or o.dim() != layout.ndim:
            continue
        try:
            z = layout.to_bct(o)
        except (RuntimeError, LayoutError):
            continue
        if z.shape != log_probs.shape or is_log_normalized(z):
            continue
        if torch.allclose(torch.log_softmax(z, 1), log_probs, atol=1e-4, rtol=1e-4):
            found = name
            if not list(modules[name].children()):
                break
    if found is None:
        return None
    note = None
    leaves = [n for n in order if not list(modules[n].children())]
    if found in leaves and isinstance(modules[found], ELEMENTWISE):
        i = leaves.index(found)
        before = leaves[i - 1] if i else None
        if before and store[before].shape == store[found].shape:
            note = (
                f"the {type(modules[found]).__name__} after the class layer is skipped: "
                "sensitivities and classes from the class layer's output"
            )
            found = before
    return found, modules[found], note
