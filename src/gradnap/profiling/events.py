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


def ctc_forced_alignment(log_probs: torch.Tensor, target: list[int], blank: int = 0):
    """Viterbi CTC alignment of ``target`` to ``log_probs`` (T, K): the class of every frame
    on the best path (blank or a target symbol). Raises ValueError if T is too short."""
    lp = log_probs.detach().double().cpu().numpy()
    n_t = lp.shape[0]
    ext = [blank]
    for k in target:
        ext += [k, blank]
    n_s = len(ext)
    neg = -np.inf
    score = np.full((n_t, n_s), neg)
    back = np.zeros((n_t, n_s), dtype=np.int64)
    allowed = np.array([s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(n_s)])
    score[0, 0] = lp[0, ext[0]]
    if n_s > 1:
        score[0, 1] = lp[0, ext[1]]
    for t in range(1, n_t):
        prev = score[t - 1]
        stay = prev
        step = np.concatenate([[neg], prev[:-1]])
        skip = np.concatenate([[neg, neg], prev[:-2]])
        skip = np.where(allowed, skip, neg)
        cand = np.stack([stay, step, skip])
        best = cand.argmax(0)
        score[t] = cand[best, np.arange(n_s)] + lp[t, ext]
        back[t] = best
    ends = [n_s - 1] + ([n_s - 2] if n_s > 1 else [])
    s = max(ends, key=lambda j: score[-1, j])
    if not np.isfinite(score[-1, s]):
        raise ValueError(f"{n_t} frames are too few for a target of {len(target)} symbols")
    path = [0] * n_t
    for t in range(n_t - 1, -1, -1):
        path[t] = ext[s]
        s -= back[t, s]
    return path
