"""Streaming sums and counts per (layer, group) and over all events (METHOD.md "Profile").

Memory does not grow with the number of utterances: only sums (float64) and counts are
kept, never the aligned crops. Two accumulators merge by addition.
"""

from __future__ import annotations

import torch

from gradnap.profiling.align import Crops

VARIABLES = ("activation", "gradient", "navai", "nap")


class ProfileAccumulator:
    """Sums of aligned crops per group (``"grapheme:a"``, ``"phoneme:AE"``, ...).

    Parameters are only stored by the constructor; the learned state ends in ``_``.

    >>> acc = ProfileAccumulator({"conv1": (250, 74)})
    >>> acc.update({"conv1": crops}, [["grapheme:a", "phoneme:AE"], ...])  # doctest: +SKIP
    >>> acc.merge(other); acc.counts_  # doctest: +SKIP
    """

    def __init__(self, shapes: dict[str, tuple[int, int]], neurons: dict | None = None):
        self.shapes = shapes  # layer -> (channels kept, crop width)
        self.neurons = neurons or {}  # layer -> channel indices to keep (optional)
        self.groups_: list[str] = []
        self.counts_ = torch.zeros(0, dtype=torch.long)
        self.n_events_ = 0
        self.sums_: dict[str, dict[str, torch.Tensor]] = {}
        self.totals_: dict[str, dict[str, torch.Tensor]] = {}

    def _group_index(self, names: list[str]) -> list[int]:
        index = {g: i for i, g in enumerate(self.groups_)}
        new = [n for n in dict.fromkeys(names) if n not in index]
        if new:
            self.groups_ += new
            self.counts_ = torch.cat([self.counts_, torch.zeros(len(new), dtype=torch.long)])
            for per_var in self.sums_.values():
                for var, s in per_var.items():
                    per_var[var] = _grow(s, len(self.groups_))
            index = {g: i for i, g in enumerate(self.groups_)}
        return [index[n] for n in names]

    def update(self, crops: dict[str, Crops], labels: list[list[str]]) -> ProfileAccumulator:
        """Add a batch of events: aligned crops per layer and each event's group names.

        The per-group sums of a batch are one float64 matrix product: a (groups + 1) x
        events membership matrix (its last row all ones, for the all-event total) times the
        events' flattened crops. Everything is summed in float64, so the order of events,
        batches and workers changes nothing beyond float64 rounding.
        """
        n = len(labels)
        pairs = [(e, g) for e, names in enumerate(labels) for g in names]
        events = torch.tensor([p[0] for p in pairs], dtype=torch.long)
        groups = torch.tensor(self._group_index([p[1] for p in pairs]), dtype=torch.long)
        if len(pairs):
            self.counts_ += torch.bincount(groups, minlength=len(self.groups_))
        self.n_events_ += n
        uniq, inverse = torch.unique(groups, return_inverse=True)
        membership = torch.zeros(len(uniq) + 1, n, dtype=torch.float64)
        membership[inverse, events] = 1.0
        membership[-1] = 1.0
        for layer, c in crops.items():
            keep = self.neurons.get(layer)
            sums = self.sums_.setdefault(layer, {})
            totals = self.totals_.setdefault(layer, {})
            done = {}
            for var in VARIABLES:
                x = getattr(c, var)
                if keep is not None:
                    x = x[:, keep]
                if x.shape[0] != n:
                    raise ValueError(f"{layer}: {x.shape[0]} crops for {n} events")
                shape = tuple(x.shape[1:])
                if var == "navai" and c.navai is c.activation and not keep:
                    part = done["activation"]  # the input's NAvAI crop is its GradNAP crop
                else:
                    member = membership.to(x.device)
                    part = member @ x.reshape(n, -1).to(torch.float64)
                    part = part.reshape((len(uniq) + 1,) + shape)
                done[var] = part
                if var not in sums:
                    sums[var] = torch.zeros(
                        (_capacity(len(self.groups_)),) + shape,
                        dtype=torch.float64,
                        device=x.device,
                    )
                    totals[var] = torch.zeros(shape, dtype=torch.float64, device=x.device)
                sums[var] = _grow(sums[var], len(self.groups_))
                sums[var][uniq.to(x.device)] += part[:-1]
                totals[var] += part[-1]
        return self

    def merge(self, other: ProfileAccumulator) -> ProfileAccumulator:
        """Add another accumulator's sums and counts into this one (groups matched by name)."""
        if set(other.sums_) - set(self.sums_) and self.sums_:
            raise ValueError("accumulators cover different layers")
        idx = torch.tensor(self._group_index(other.groups_), dtype=torch.long)
        if len(idx):
            self.counts_.index_add_(0, idx, other.counts_)
        self.n_events_ += other.n_events_
        for layer, per_var in other.sums_.items():
            mine = self.sums_.setdefault(layer, {})
            tot = self.totals_.setdefault(layer, {})
            for var, s in per_var.items():
                s = s[: len(other.groups_)]
                if var not in mine:
                    mine[var] = torch.zeros(
                        (_capacity(len(self.groups_)),) + tuple(s.shape[1:]),
                        dtype=torch.float64,
                        device=s.device,
                    )
                mine[var] = _grow(mine[var], len(self.groups_))
                mine[var].index_add_(0, idx.to(s.device), s.to(mine[var].device))
                tot[var] = tot.get(var, 0) + other.totals_[layer][var].to(mine[var].device)
        return self

    def means(self, layer: str) -> dict[str, torch.Tensor]:
        """Per-group means ``(groups, C, W)`` and all-event means ``(C, W)`` of a layer."""
        if self.n_events_ == 0:
            raise ValueError("no events were accumulated")
        counts = self.counts_.to(torch.float64).clamp_min(1)
        out = {}
        for var in VARIABLES:
            s = self.sums_[layer][var][: len(self.groups_)]
            out[var] = s / counts.to(s.device)[:, None, None]
            out[f"{var}_all"] = self.totals_[layer][var] / self.n_events_
        return out


def _capacity(n: int) -> int:
    return max(8, 1 << (n - 1).bit_length()) if n else 8


def _grow(s: torch.Tensor, n: int) -> torch.Tensor:
    """``s`` with room for at least ``n`` groups (capacity doubles: few copies)."""
    if s.shape[0] >= n:
        return s
    pad = torch.zeros(
        (_capacity(n) - s.shape[0],) + tuple(s.shape[1:]), dtype=s.dtype, device=s.device
    )
    return torch.cat([s, pad])
