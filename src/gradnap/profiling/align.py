"""Alignment ("time-locking", METHOD.md Figure 1A) and the aligned crops of one layer.

- GradNAP, layer l: ``tau = argmax_tau sum_c |A_l[c, tau] * G_l[c, tau]|``;
  input: ``tau = argmax_tau sum_f |G_0[f, tau]|`` (zeros of a z-normalized spectrogram are
  not silence). Ties go to the earliest frame.
- NAvAI: aligned on the gradient alone, ``argmax_tau sum_c |G_l|`` **[choice]** for hidden
  layers (the same as GradNAP's for the input).
- NAP: the GradNAP-aligned activation crop sorted along time, descending **[choice]** of
  window; sorting removes time, so its last axis is a rank. Like the activation crops, NAP
  crops are windows of the layer's map: they are sorted and summed once per utterance, one
  sort per distinct window (:mod:`gradnap.profiling.accumulate`).

A crop of width ``W`` runs from offset ``-(W // 2)`` to ``W - W // 2 - 1`` around ``tau``,
zero outside the utterance (and, for gradients, outside the support window, where the
gradient is exactly zero).
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
    """Aligned gradient crops of one layer for E events, (E, C, width), and where the
    activation crops start (they are not materialized here: the activation, NAvAI and NAP
    sums are taken from windows of ``full`` once per utterance)."""

    gradient: torch.Tensor  # G aligned for GradNAP
    tau: torch.Tensor  # (E,) alignment frame of the layer (GradNAP)
    first: torch.Tensor  # (E,) first frame of the GradNAP crop (tau - width // 2)
    navai_first: torch.Tensor  # (E,) first frame of the NAvAI crop
    full: torch.Tensor  # (C, T_l) the layer's activation (or X): the activation and NAvAI
    #                     crops are windows of it, summed per utterance (accumulate.py)


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


def align(full: torch.Tensor, grad: Window, width: int, is_input: bool) -> Crops:
    """Align and crop one layer: ``full`` is its (C, T_l) activation (or X), ``grad`` the
    events' gradient windows."""
    magnitude = grad.values.abs()
    g_abs = magnitude.sum(1)
    if is_input:
        score = g_abs
    else:  # |A * G| = |A| * |G|, exactly
        score = gather_window(full.abs(), grad.start, grad.values.shape[-1]).mul_(magnitude).sum(1)
    tau = grad.start + score.argmax(1)
    first = tau - width // 2
    gradient = _gather_own(grad.values, first - grad.start, width)
    navai_first = first if is_input else grad.start + g_abs.argmax(1) - width // 2
    return Crops(gradient, tau, first, navai_first, full)
