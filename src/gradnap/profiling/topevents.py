"""The events where each neuron's aligned activation is largest ("what does this neuron
listen to"), per (group, layer, neuron), as a mergeable top-k.

An event's **aligned activation** of neuron ``n`` in layer ``l`` is ``A_l[n, tau_l]``: the
activation at offset 0 of its aligned window, ``tau_l`` being GradNAP's alignment point
(METHOD.md "Alignment": ``argmax_tau sum_c |A_l[c, tau] * G_l[c, tau]|``; for the input,
``X[f, tau_0]`` with ``tau_0 = argmax_tau sum_f |G_0[f, tau]|``, the mel bins being its
"neurons"). It is the offset-0 column of the crops whose group mean is ``mean_A[g]``
(METHOD.md "Profile"); zero where ``tau_l`` lies outside the utterance, as the crops are.

Events are ranked in one total order: aligned activation descending, then utterance index
ascending, then alignment frame ascending. Events of a group that share an utterance and
an alignment frame have the same aligned activation and the same clip, so they count once
(the k kept are k distinct moments of the audio). Under a total order the top k of a union
is the top k of the parts' top k: merging is exact, whatever the batching, the event
order, the number of processes or a resume (as long as the activation maps themselves are
computed bitwise alike, e.g. the same thread count).

State (per layer): ``value`` (groups, C, k) float32 (``-inf`` for an empty slot),
``utterance`` and ``frame`` (groups, C, k) int64 (-1 for an empty slot): the utterance's
index in the run's utterance list and the alignment frame ``tau_l`` in layer-l frames.
"""

from __future__ import annotations

import torch

from gradnap.profiling.sensitivity import gather_window

FIELDS = ("value", "utterance", "frame")


def empty(n_groups: int, channels: int, k: int, device="cpu") -> dict[str, torch.Tensor]:
    """Empty slots for ``n_groups`` groups of ``channels`` neurons."""
    shape = (n_groups, channels, k)
    return {
        "value": torch.full(shape, float("-inf"), dtype=torch.float32, device=device),
        "utterance": torch.full(shape, -1, dtype=torch.long, device=device),
        "frame": torch.full(shape, -1, dtype=torch.long, device=device),
    }


def batch_top(
    full: torch.Tensor, tau: torch.Tensor, groups: torch.Tensor, events: torch.Tensor, k: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The top ``k`` of one batch of one utterance's events, per group and neuron.

    ``full`` (C, T) is the layer's activation map (or X), ``tau`` (E,) each event's
    alignment frame, ``groups``/``events`` (P,) the (group index, event index) pairs.
    Returns the distinct group indices ``(U,)`` (ascending) and their ``value`` and
    ``frame`` (U, C, k), ties broken by the earlier frame; ``utterance`` is left to the
    caller. One sort of the (distinct (group, frame) pairs x C) values, keyed by group,
    value and frame packed in an int64 (two stable sorts where they do not fit); no loop
    over groups or neurons."""
    device = full.device
    tau, groups, events = tau.to(device), groups.to(device), events.to(device)
    lo = int(tau.min())
    span = int(tau.max()) - lo + 1
    key = torch.unique(groups * span + (tau[events] - lo))  # group-major, frame ascending
    g, frames = key // span, key % span + lo
    v = gather_window(full, frames, 1)[..., 0]  # (P', C): A[n, tau], zero outside
    uniq, counts = torch.unique_consecutive(g, return_counts=True)
    group_rank = torch.repeat_interleave(torch.arange(len(uniq), device=device), counts)
    frame_rank = torch.unique(frames, return_inverse=True)[1]
    fb, gb = _bits(int(frame_rank.max()) + 1), _bits(len(uniq))
    if gb + 32 + fb <= 63:  # distinct keys: group ascending, value descending, frame ascending
        key = (group_rank[:, None] << (32 + fb)) | (_descending(v) << fb) | frame_rank[:, None]
        order = key.sort(dim=0).indices
    else:
        order = v.sort(dim=0, descending=True, stable=True).indices  # ties: earlier frame
        order = order.gather(0, g[order].sort(dim=0, stable=True).indices)  # group segments
    starts = counts.cumsum(0) - counts
    r = torch.arange(k, device=device)
    rows = (starts[:, None] + r).clamp(max=len(g) - 1).flatten()  # (U * k,)
    pick = order[rows]  # (U * k, C): row of v per (group, rank) and neuron
    shape = (len(uniq), k, v.shape[1])
    value = v.gather(0, pick).reshape(shape).float()
    frame = frames[pick].reshape(shape)
    valid = (r < counts[:, None])[:, :, None]
    value = torch.where(valid, value, float("-inf"))
    frame = torch.where(valid, frame, -1)
    return uniq, {"value": value.transpose(1, 2), "frame": frame.transpose(1, 2)}


def merge_top(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], k: int) -> dict:
    """The top ``k`` of two tops (or candidate sets) ``(..., n)`` in the total order (value
    descending, utterance ascending, frame ascending), each (utterance, frame) once."""
    top = {f: torch.cat([a[f], b[f].to(a[f].device)], dim=-1) for f in FIELDS}

    def by(order):
        for f in FIELDS:
            top[f] = top[f].gather(-1, order)

    # (utterance, frame) packed below the value: one sort of int64 keys (the moments ranked
    # first where their bits do not fit; three stable sorts where even that does not)
    u, f = top["utterance"] + 1, top["frame"] - top["frame"].min()
    fb = _bits(int(f.max()) + 1)
    rank, rb = (u << fb) | f, _bits(int(u.max()) + 1) + fb
    if 32 + rb > 63 and int(top["utterance"].max()) < 2**31:
        rank = torch.unique((top["utterance"] << 32) | (top["frame"] + 2**31), return_inverse=True)[
            1
        ]
        rb = _bits(int(rank.max()) + 1)
    if 32 + rb <= 63:
        key = (_descending(top["value"]) << rb) | rank
        order = key.sort(dim=-1).indices
        by(order)
    else:
        by(top["frame"].sort(dim=-1, stable=True).indices)
        by(top["utterance"].sort(dim=-1, stable=True).indices)
        by(top["value"].sort(dim=-1, descending=True, stable=True).indices)
    u, f = top["utterance"], top["frame"]
    dup = torch.zeros_like(u, dtype=torch.bool)
    dup[..., 1:] = (u[..., 1:] == u[..., :-1]) & (f[..., 1:] == f[..., :-1]) & (u[..., 1:] >= 0)
    if bool(dup.any()):
        top["value"] = top["value"].masked_fill(dup, float("-inf"))
        top["utterance"] = u.masked_fill(dup, -1)
        top["frame"] = f.masked_fill(dup, -1)
        by(top["value"].sort(dim=-1, descending=True, stable=True).indices)
    return {f: t[..., :k].contiguous() for f, t in top.items()}


def _bits(n: int) -> int:
    """Bits that hold 0 .. n - 1."""
    return max(1, (n - 1).bit_length())


def _descending(value: torch.Tensor) -> torch.Tensor:
    """int64 in [0, 2^32), smaller for a larger float32 ``value`` (-0.0 as 0.0; -inf after
    every finite value): the bits of a float32 made monotone."""
    bits = (value.float() + 0.0).view(torch.int32).long()
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # monotone, signed 32-bit
    return (2**31 - 1) - ordered


def grow(top: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
    """``top`` with at least ``n`` group rows (new rows empty; capacity doubles)."""
    have = top["value"].shape[0]
    if have >= n:
        return top
    cap = max(8, 1 << (n - 1).bit_length())
    _, channels, k = top["value"].shape
    pad = empty(cap - have, channels, k, top["value"].device)
    return {f: torch.cat([top[f], pad[f]]) for f in FIELDS}


def _beats(a: dict, i: int, b: dict, j: int) -> torch.Tensor:
    """Whether entry ``i`` of ``a`` strictly precedes entry ``j`` of ``b`` in the order."""
    va, vb = a["value"][..., i], b["value"][..., j]
    ua, ub = a["utterance"][..., i], b["utterance"][..., j]
    fa, fb = a["frame"][..., i], b["frame"][..., j]
    return (va > vb) | ((va == vb) & ((ua < ub) | ((ua == ub) & (fa < fb))))


def add(tops: dict, layer: str, rows: torch.Tensor, new: dict, n_groups: int, k: int) -> None:
    """Merge ``new`` (len(rows), C, k), each (row, neuron) sorted in the order, into
    ``tops[layer]`` at group rows ``rows`` (distinct), in place; the layer's top is made
    (or grown) to ``n_groups`` rows. Only the (row, neuron) entries whose best new event
    precedes their current k-th are merged: the others cannot change."""
    top = tops.get(layer)
    if top is None:
        top = empty(n_groups, new["value"].shape[1], k, new["value"].device)
    top = tops[layer] = grow(top, n_groups)
    rows = rows.to(top["value"].device)
    new = {f: t.to(top["value"].device) for f, t in new.items()}
    mine = {f: top[f][rows] for f in FIELDS}
    change = _beats(new, 0, mine, k - 1) & (new["utterance"][..., 0] >= 0)
    r, n = torch.nonzero(change, as_tuple=True)
    if not len(r):
        return
    merged = merge_top(
        {f: t[r, n] for f, t in mine.items()}, {f: t[r, n] for f, t in new.items()}, k
    )
    for f in FIELDS:
        top[f][rows[r], n] = merged[f]
