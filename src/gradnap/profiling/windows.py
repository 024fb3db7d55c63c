"""Sums of activation windows over the events of one utterance (the activation and NAP
crops of :mod:`gradnap.profiling.accumulate`): every event's crop is a window of the
layer's activation map ``full`` ``(C, T)`` starting at its aligned frame, so the sums per
group are taken over the distinct window starts, weighted by how many events of each group
start there, without materializing one crop per event. Float64 throughout.
"""

from __future__ import annotations

import torch

from gradnap.profiling.align import sort_ascending_
from gradnap.profiling.sensitivity import gather_window


def window_starts(first, width, n_frames, membership):
    """Distinct window starts, clamped to ``-width .. n_frames`` (windows wholly outside
    the map are all zeros), and per (group, start) weights: how many of the group's events
    start there (float64, ``(groups + 1, starts)``)."""
    starts, inverse = torch.unique(first.clamp(-width, n_frames), return_inverse=True)
    weights = torch.zeros(membership.shape[0], len(starts), dtype=torch.float64)
    weights.index_add_(1, inverse.cpu(), membership.cpu())
    return starts, weights


def window_sums(full, starts, weights, width) -> torch.Tensor:
    """``S[g, :, k] = sum_e M[g, e] * full[:, first[e] + k]`` (zero outside the map), in
    float64, from the distinct window starts and their per-group counts
    (:func:`window_starts`), times the windows:

    - few starts x channels (a trained model's sparse events): the windows are gathered,
      in chunks, and summed by one matrix product per chunk;
    - otherwise one product per offset ``k`` of the counts with the map's frames at
      ``start + k``, never materializing the windows: over the distinct starts when they
      are few against the frames and groups, else over every frame.
    """
    n_frames, channels = full.shape[1], full.shape[0]
    n_rows = weights.shape[0]
    if len(starts) * channels < 16384 or width == 1:  # per-offset products would be tiny
        chunks = _chunks(starts, max(1, (1 << 22) // (channels * width)))
        return _weighted_sum(
            weights.to(full.device),
            (gather_window(full, part.to(full.device), width) for part in chunks),
        )
    # row j of ``frames`` is frame j - width; window starts run from -width to n_frames
    frames = torch.nn.functional.pad(full.to(torch.float64), (width, width + 1)).T
    length = n_frames + width + 1
    out = torch.empty(n_rows, width, channels, dtype=torch.float64, device=full.device)
    if len(starts) * (n_rows + 4) < n_rows * length:  # sparse: gather the starts' frames
        frames, rows = frames.contiguous(), (starts + width).to(full.device)
        weights = weights.to(full.device)
        for k in range(width):
            torch.mm(weights, frames.index_select(0, rows + k), out=out[:, k])
    else:  # dense: every frame, counts of zero included
        counts = torch.zeros(n_rows, length, dtype=torch.float64)
        counts[:, (starts + width).cpu()] = weights
        counts = counts.to(full.device)
        for k in range(width):
            torch.mm(counts, frames[k : k + length], out=out[:, k])
    return out.transpose(1, 2)


def sorted_window_sums(full, starts, weights, width, chunk: int = 256) -> torch.Tensor:
    """``S[g, :, r] = sum_e M[g, e] * sort(full[:, first[e] : first[e] + width])[r]`` (NAP
    crops, ascending, zero outside the map), in float64: each distinct window
    (:func:`window_starts`) is sorted once and weighted by how many events of each group
    start there."""
    return _weighted_sum(
        weights.to(full.device),
        (
            sort_ascending_(gather_window(full, part.to(full.device), width))
            for part in _chunks(starts, chunk)
        ),
    )


def _chunks(starts: torch.Tensor, size: int) -> list[torch.Tensor]:
    """``starts`` in pieces of at most ``size`` (bounded memory on long utterances)."""
    return list(torch.split(starts, size)) if len(starts) else [starts]


def _weighted_sum(weights: torch.Tensor, crops) -> torch.Tensor:
    """``sum_u weights[:, u] * crops[u]`` in float64 over chunks of crops ``(u, C, W)``,
    the columns of ``weights`` taken in the same order."""
    out, done = None, 0
    for part in crops:
        w = weights[:, done : done + len(part)]
        done += len(part)
        product = w @ part.reshape(len(part), -1).to(torch.float64)
        out = product if out is None else out.add_(product)
    return out.reshape((weights.shape[0],) + tuple(part.shape[1:]))
