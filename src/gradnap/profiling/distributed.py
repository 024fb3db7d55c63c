"""Profiling across processes and machines with ``torch.distributed`` (``torchrun``).

Accumulators are sums and counts, so the work splits by utterance and merges by addition:
each rank profiles its own shard of the corpus and the sums are all-reduced once at the
end (gloo on CPU, NCCL on CUDA). Groups are matched by name, so ranks may see different
groups; the result does not depend on the number of processes. Joining and leaving the
process group: :mod:`gradnap.parallel`.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from gradnap.parallel import init_from_env, rank_and_world  # noqa: F401 (set-up lives there)


def shard(durations: list[float], rank: int, world: int) -> list[int]:
    """This rank's utterance indices: a deterministic split balanced by duration (longest
    first, each to the rank with the least audio so far; ties to the lowest rank), returned
    in corpus order."""
    loads = [0.0] * world
    mine = []
    for i in sorted(range(len(durations)), key=lambda i: (-durations[i], i)):
        r = min(range(world), key=lambda r: (loads[r], r))
        loads[r] += durations[i]
        if r == rank:
            mine.append(i)
    return sorted(mine)


def all_reduce_state(state: dict, device="cpu") -> dict:
    """Sum an accumulator's :meth:`~ProfileAccumulator.state_dict` over all ranks; every
    rank gets the total, its groups sorted by name."""
    gathered: list = [None] * dist.get_world_size()
    layout = {k: {v: tuple(t.shape[1:]) for v, t in d.items()} for k, d in state["sums"].items()}
    dist.all_gather_object(gathered, (state["groups"], layout))
    groups = sorted(set().union(*(g for g, _ in gathered)))
    shapes: dict = {}
    for _, lay in gathered:
        for k, d in lay.items():
            shapes.setdefault(k, {}).update(d)
    index = {g: i for i, g in enumerate(groups)}
    mine = torch.tensor([index[g] for g in state["groups"]], dtype=torch.long)
    counts = torch.zeros(len(groups), dtype=torch.long)
    counts[mine] = state["counts"]
    n_events = torch.tensor([state["n_events"]], dtype=torch.long)
    sums, totals = {}, {}
    for layer in sorted(shapes):
        sums[layer], totals[layer] = {}, {}
        for var in sorted(shapes[layer]):
            shape = shapes[layer][var]
            s = torch.zeros((len(groups),) + shape, dtype=torch.float64)
            t = torch.zeros(shape, dtype=torch.float64)
            if layer in state["sums"]:
                s[mine] = state["sums"][layer][var]
                t = state["totals"][layer][var].clone()
            sums[layer][var], totals[layer][var] = s, t
    tensors = [counts, n_events] + [
        x for layer in sums for x in (*sums[layer].values(), *totals[layer].values())
    ]
    for x in tensors:
        y = x.to(device)
        dist.all_reduce(y)
        x.copy_(y.cpu())
    return {
        "groups": groups,
        "counts": counts,
        "n_events": int(n_events),
        "sums": sums,
        "totals": totals,
    }


def all_gather_objects(obj) -> list:
    """``obj`` of every rank, in rank order."""
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def all_reduce_profiler(profiler) -> None:
    """Sum a :class:`~gradnap.profiling.run.Profiler` over all ranks
    (:meth:`Profiler.all_reduce`)."""
    profiler.all_reduce()
