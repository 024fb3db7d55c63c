"""Events (METHOD.md "Objects"): output frames and their group labels.

An event is an output frame whose predicted class is not the CTC blank (blank frames
optional). Output frame ``t`` is at the centre of its receptive field,
``offset + t * frame_seconds`` (:mod:`gradnap.profiling.timing`); a time
span ``[start, end)`` holds the frames whose centre lies in it (a boundary exactly on a
centre goes to the later span).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def span_frames(
    start: float, end: float, frame_seconds: float, n_frames: int, offset: float = 0.0
) -> range:
    """Output frames whose centre ``offset + t * frame_seconds`` lies in ``[start, end)``
    (``offset``: the time of frame 0, :mod:`gradnap.profiling.timing`)."""
    eps = 1e-9
    first = max(0, math.ceil((start - offset) / frame_seconds - eps))
    stop = min(n_frames, math.ceil((end - offset) / frame_seconds - eps))
    return range(first, max(first, stop))


def frame_labels(
    spans, frame_seconds: float, n_frames: int, offset: float = 0.0
) -> list[str | None]:
    """Per output frame, the label of the span holding it (``None`` where none does)."""
    out: list[str | None] = [None] * n_frames
    for label, start, end in spans:
        for t in span_frames(start, end, frame_seconds, n_frames, offset):
            out[t] = label
    return out


def ctc_forced_alignment(
    log_probs: torch.Tensor, target: list[int], blank: int = 0, block: int | None = None
) -> list[int]:
    """Viterbi CTC alignment of ``target`` to ``log_probs`` (T, K): the class of every frame
    on the best path (blank or a target symbol). Raises ValueError if T is too short.

    Ties go to staying in a state, then to the next state. Memory is O(S sqrt(T)) for
    S = 2 len(target) + 1 states, not a T x S table (a 20-minute utterance has T = 60,000
    and S ~ 36,000: 17 GB in float64): the forward pass keeps the score row of every
    ``block``-th frame (default ``ceil(sqrt(T))``), and the back-pointers (one byte per
    frame and state) are recomputed one block at a time while tracing the path back.
    """
    lp = log_probs.detach().double().cpu().numpy()
    n_t = lp.shape[0]
    ext = np.array([blank] + [x for k in target for x in (k, blank)], dtype=np.int64)
    n_s = len(ext)
    skip_ok = np.zeros(n_s, dtype=bool)
    skip_ok[2:] = (ext[2:] != blank) & (ext[2:] != ext[:-2])
    block = block or max(1, math.isqrt(max(n_t - 1, 0)) + 1)
    row = np.full(n_s, -np.inf)
    row[:2] = lp[0, ext[:2]]
    checkpoints = [row]  # score rows at frames 0, block, 2 block, ...
    for t in range(1, n_t):
        row = _viterbi_step(row, lp[t, ext], skip_ok)[0]
        if t % block == 0:
            checkpoints.append(row)
    ends = [n_s - 1] + ([n_s - 2] if n_s > 1 else [])
    s = max(ends, key=lambda j: row[j])
    if not np.isfinite(row[s]):
        raise ValueError(f"{n_t} frames are too few for a target of {len(target)} symbols")
    path = [0] * n_t
    for k in range(len(checkpoints) - 1, -1, -1):  # back through the blocks
        first, last = k * block, min((k + 1) * block, n_t - 1)
        back = np.empty((last - first, n_s), dtype=np.uint8)  # frames first+1 .. last
        row = checkpoints[k]
        for j, t in enumerate(range(first + 1, last + 1)):
            row, back[j] = _viterbi_step(row, lp[t, ext], skip_ok)
        for t in range(last, first, -1):
            path[t] = int(ext[s])
            s -= int(back[t - first - 1, s])
    path[0] = int(ext[s])
    return path


def _viterbi_step(prev: np.ndarray, emit: np.ndarray, skip_ok: np.ndarray):
    """One frame of the CTC Viterbi: the new score row and, per state, how many states
    back its best predecessor lies (0 stay, 1 step, 2 skip; the first on ties).
    ``skip_ok[s]`` (s >= 2): state s may be entered from s - 2."""
    best = prev.copy()
    back = np.zeros(len(prev), dtype=np.uint8)
    np.greater(prev[:-1], prev[1:], out=back[1:], casting="unsafe")
    np.maximum(best[1:], prev[:-1], out=best[1:])
    skip = np.greater(prev[:-2], best[2:]) & skip_ok[2:]
    np.copyto(best[2:], prev[:-2], where=skip)
    np.copyto(back[2:], 2, where=skip)
    best += emit
    return best, back
