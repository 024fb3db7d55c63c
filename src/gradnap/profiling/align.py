"""Alignment ("time-locking", METHOD.md Figure 1A) and the aligned crops of one layer.

Two alignment rules (:data:`gradnap.profiling.method.ALIGNMENTS`), each
``tau = argmax_tau`` of a score over the layer's frames, ties to the earliest frame:

- ``"activation_gradient"``: ``sum_c |A_l[c, tau] * G_l[c, tau]|`` (GradNAP, NAP);
- ``"gradient"``: ``sum_c |G_l[c, tau]|`` (NAvAI's default **[choice]** for hidden layers).

The input is aligned on ``sum_f |G_0[f, tau]|`` under either rule (zeros of a
z-normalized spectrogram are not silence). A variant says which rule its sums use
(:class:`gradnap.profiling.method.Sum`); only the rules some variant needs are computed.

A crop of width ``W`` runs from offset ``-(W // 2)`` to ``W - W // 2 - 1`` around ``tau``,
zero outside the utterance (and, for gradients, outside the support window, where the
gradient is exactly zero). Activation crops are not materialized here: they are windows of
the layer's map, summed once per utterance (:mod:`gradnap.profiling.accumulate`); NAP
crops are sorted once per distinct window.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from gradnap.profiling.sensitivity import Window, gather_window


@dataclass
class Crops:
    """The aligned crops of one layer for E events of one utterance.

    ``full`` is the layer's (C, T_l) activation (or X); ``first[rule]`` (E,) the first
    frame of each event's crop under an alignment rule (``tau - width // 2``);
    ``gradient[rule]`` (E, C, width) the aligned gradient crops, for the rules whose
    gradient some variant needs."""

    full: torch.Tensor
    width: int
    first: dict[str, torch.Tensor]
    gradient: dict[str, torch.Tensor]

    def tau(self, rule: str = "activation_gradient") -> torch.Tensor:
        """(E,) alignment frame of each event under ``rule``."""
        return self.first[rule] + self.width // 2

    def saliency(self, rule: str, keep=None) -> torch.Tensor:
        """``|A * G|`` of each event's crop under ``rule``, (E, C, width) (the neurons
        ``keep`` only, when given); zero outside the utterance."""
        full, g = (
            (self.full, self.gradient[rule])
            if keep is None
            else (
                self.full[keep],
                self.gradient[rule][:, keep],
            )
        )
        return gather_window(full, self.first[rule], self.width).abs_().mul_(g.abs())


def offsets(width: int) -> torch.Tensor:
    """Offsets of a crop of ``width`` frames: ``-(width // 2) .. width - width // 2 - 1``."""
    return torch.arange(-(width // 2), width - width // 2)


@functools.cache
def _sort_pool(n: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(n, thread_name_prefix="gradnap-sort")


def sort_ascending_(x: torch.Tensor) -> torch.Tensor:
    """``x`` sorted along its last axis, smallest first, in place when it can be (``x`` must
    be a fresh tensor). On the CPU numpy's vectorized in-place sort (about 4x torch's here)
    gives the same values; it releases the GIL, so large arrays are sorted in parts on
    ``torch.get_num_threads()`` threads. NAP wants descending order: the accumulator sums
    ascending crops and reverses the rank axis once, in :meth:`ProfileAccumulator.means`."""
    if x.device.type != "cpu" or x.requires_grad or not x.is_contiguous():
        return x.sort(dim=-1).values
    if x.dim() == 0:
        return x
    rows = x.numpy().reshape(-1, x.shape[-1])
    n = min(torch.get_num_threads(), len(rows) // 4096)
    if n > 1:
        parts = np.array_split(rows, n)
        list(_sort_pool(n).map(lambda part: part.sort(axis=-1), parts))
    else:
        rows.sort(axis=-1)
    return x


def _gather_own(values: torch.Tensor, rel: torch.Tensor, width: int) -> torch.Tensor:
    """Each event's own window ``values[e]`` at ``rel[e] + 0..width-1``, zero outside."""
    idx = rel[:, None] + torch.arange(width, device=values.device)
    valid = (idx >= 0) & (idx < values.shape[-1])
    picked = torch.gather(
        values, 2, idx.clamp(0, values.shape[-1] - 1)[:, None, :].expand(-1, values.shape[1], -1)
    )
    return picked * valid[:, None, :].to(values.dtype)


def align(
    full: torch.Tensor,
    grad: Window,
    width: int,
    is_input: bool,
    rules=("activation_gradient", "gradient"),
    gradients=("activation_gradient",),
) -> Crops:
    """Align and crop one layer: ``full`` is its (C, T_l) activation (or X), ``grad`` the
    events' gradient windows. ``rules``: the alignment rules to compute; ``gradients``:
    those whose gradient crops are wanted."""
    magnitude = grad.values.abs()
    done: dict[str, torch.Tensor] = {}  # the input has one rule under both names
    first, gradient = {}, {}
    for rule in dict.fromkeys((*rules, *gradients)):
        same = "gradient" if is_input else rule
        if same not in done:
            if same == "gradient":
                score = magnitude.sum(1)
            else:  # |A * G| = |A| * |G|, exactly
                score = gather_window(full.abs(), grad.start, grad.values.shape[-1])
                score = score.mul_(magnitude).sum(1)
            done[same] = grad.start + score.argmax(1) - width // 2
        first[rule] = done[same]
    crops_of: dict[str, torch.Tensor] = {}
    for rule in gradients:
        same = "gradient" if is_input else rule
        if same not in crops_of:
            crops_of[same] = _gather_own(grad.values, first[rule] - grad.start, width)
        gradient[rule] = crops_of[same]
    return Crops(full, width, first, gradient)
