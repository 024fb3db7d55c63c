"""Streaming sums and counts per (layer, group) and over all events (METHOD.md "Profile").

Memory does not grow with the number of utterances: only sums (float64) and counts are
kept, never the aligned crops (and, with ``top_events``, the few events where each neuron's
aligned activation is largest: :mod:`gradnap.profiling.topevents`). Which sums are kept is
what the variants need (:class:`gradnap.profiling.method.Sum`); two accumulators merge by
addition (:meth:`ProfileAccumulator.merge`, and across processes
:meth:`ProfileAccumulator.all_reduce`).
"""

from __future__ import annotations

import torch

from gradnap.profiling import topevents
from gradnap.profiling.align import Crops
from gradnap.profiling.method import DEFAULT_VARIANTS, Sum, make_variants, needed_sums
from gradnap.profiling.windows import sorted_window_sums, window_starts, window_sums

PER_EVENT = ("gradient", "saliency")  # summed per batch of events
PER_WINDOW = ("activation", "sorted")  # windows of the layer's map: summed per utterance


class ProfileAccumulator:
    """Sums of aligned crops per group (``"grapheme:a"``, ``"phoneme:AE"``, ...).

    Parameters are only stored by the constructor: ``sums`` (the
    :class:`~gradnap.profiling.method.Sum` objects to keep; default what GradNAP, NAvAI
    and NAP need), ``neurons`` (layer -> channel indices to keep), ``top_events`` (k: per
    group, layer and neuron keep the k events of largest aligned activation ``A_l[n,
    tau_l]``, :mod:`gradnap.profiling.topevents`; 0: none) and ``top_layers`` (the layers
    that keep them; None: all). The learned state ends in ``_``.

    >>> acc = ProfileAccumulator()
    >>> acc.update({"conv1": crops}, [["grapheme:a", "phoneme:AE"], ...])  # doctest: +SKIP
    >>> acc.merge(other); acc.counts_  # doctest: +SKIP
    """

    def __init__(
        self, sums=None, neurons: dict | None = None, top_events: int = 0, top_layers=None
    ):
        self.sums = sums
        self.neurons = neurons
        self.top_events = top_events
        self.top_layers = top_layers

    def _needs(self) -> tuple[Sum, ...]:
        return (
            tuple(self.sums)
            if self.sums is not None
            else needed_sums(make_variants(DEFAULT_VARIANTS))
        )

    def _keep(self, layer):
        return (self.neurons or {}).get(layer)

    def _init_state(self) -> None:
        if "groups_" in self.__dict__:
            return
        self.groups_: list[str] = []
        self.counts_ = torch.zeros(0, dtype=torch.long)
        self.n_events_ = 0
        self.sums_: dict[str, dict[str, torch.Tensor]] = {}
        self.totals_: dict[str, dict[str, torch.Tensor]] = {}
        self.top_: dict[str, dict[str, torch.Tensor]] = {}
        self._pending: dict[str, dict] = {}

    def __getattr__(self, name):  # learned state exists (empty) once asked for
        if name in ("groups_", "counts_", "n_events_", "sums_", "totals_", "top_", "_pending"):
            self._init_state()
            return self.__dict__[name]
        raise AttributeError(name)

    def _group_index(self, names: list[str]) -> list[int]:
        index = {g: i for i, g in enumerate(self.groups_)}
        new = [n for n in dict.fromkeys(names) if n not in index]
        if new:
            self.groups_ += new
            self.counts_ = torch.cat([self.counts_, torch.zeros(len(new), dtype=torch.long)])
            for per_var in self.sums_.values():
                for var, s in per_var.items():
                    per_var[var] = _grow(s, len(self.groups_))
            for layer, top in self.top_.items():
                self.top_[layer] = topevents.grow(top, len(self.groups_))
            index = {g: i for i, g in enumerate(self.groups_)}
        return [index[n] for n in names]

    def update(
        self, crops: dict[str, Crops], labels: list[list[str]], utterance=None, index=None
    ) -> ProfileAccumulator:
        """Add a batch of events of one utterance: their crops per layer and each event's
        group names. ``index`` (int; default ``utterance``) is the utterance's index in
        the run's utterance list, recorded with its top events.

        The per-event sums (gradient, ``|A*G|``) are taken by one float64 matrix product:
        a (groups + 1) x events membership matrix (last row all ones, for the all-event
        total) times the flattened crops. The activation and sorted (NAP) crops are
        windows of the layer's activation map: they are summed once per utterance, weighted
        by how many events of each group start at each distinct frame; the sorted crops are
        sorted once per distinct window. Batches with the same ``utterance`` key wait for
        each other (until the key changes or :meth:`flush`); ``None`` sums at once.
        Everything is summed in float64: the order of events, batches and workers changes
        nothing beyond float64 rounding.
        """
        self._init_state()
        needs = self._needs()
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
            keep = self._keep(layer)
            for s in needs:
                if s.kind not in PER_EVENT:
                    continue
                if s.kind == "gradient":
                    x = c.gradient[s.align] if keep is None else c.gradient[s.align][:, keep]
                else:
                    x = c.saliency(s.align, keep)
                if x.shape[0] != n:
                    raise ValueError(f"{layer}: {x.shape[0]} crops for {n} events")
                part = membership.to(x.device) @ x.reshape(n, -1).to(torch.float64)
                self._add(layer, s.key, uniq, part.reshape((len(uniq) + 1,) + tuple(x.shape[1:])))
            self._pend(layer, c, groups, events, n, utterance)
            if self._tops(layer) and len(pairs):
                self._update_top(layer, c, groups, events, utterance if index is None else index)
        if utterance is None:
            self.flush()
        return self

    def _tops(self, layer: str) -> bool:
        return bool(self.top_events) and (self.top_layers is None or layer in self.top_layers)

    def _update_top(self, layer: str, c: Crops, groups, events, index) -> None:
        if "activation_gradient" not in c.first:
            raise ValueError(f"{layer}: top events need the activation_gradient alignment")
        if not isinstance(index, int):
            raise ValueError("top events need the utterance's index (an int)")
        keep = self._keep(layer)
        full = c.full if keep is None else c.full[keep]
        k = int(self.top_events)
        uniq, new = topevents.batch_top(full, c.tau("activation_gradient"), groups, events, k)
        new["utterance"] = torch.full_like(new["frame"], index).masked_fill(new["frame"] < 0, -1)
        topevents.add(self.top_, layer, uniq, new, len(self.groups_), k)

    def _pend(self, layer, c: Crops, groups, events, n, utterance) -> None:
        """Keep the window starts until the utterance changes or :meth:`flush`: one
        correlation per utterance, not per batch."""
        pending = self._pending.get(layer)
        if pending is not None and pending["utterance"] != utterance:
            self._flush_layer(layer)
            pending = None
        if pending is None:
            pending = self._pending[layer] = {
                "full": c.full,
                "width": c.width,
                "utterance": utterance,
                "first": {},
                "groups": [],
                "events": [],
                "n": 0,
            }
        pending["groups"].append(groups)
        pending["events"].append(events + pending["n"])
        for rule in dict.fromkeys(s.align for s in self._needs() if s.kind in PER_WINDOW):
            pending["first"].setdefault(rule, []).append(c.first[rule])
        pending["n"] += n

    def flush(self) -> ProfileAccumulator:
        """Sum the pending activation and sorted windows (done by means, merge, result)."""
        for layer in list(self._pending):
            self._flush_layer(layer)
        return self

    def _flush_layer(self, layer: str) -> None:
        p = self._pending.pop(layer)
        groups, events = torch.cat(p["groups"]), torch.cat(p["events"])
        uniq, inverse = torch.unique(groups, return_inverse=True)
        membership = torch.zeros(len(uniq) + 1, p["n"], dtype=torch.float64)
        membership[inverse, events] = 1.0
        membership[-1] = 1.0
        keep = self._keep(layer)
        full = p["full"] if keep is None else p["full"][keep]
        width = p["width"]
        firsts: list[torch.Tensor] = []  # distinct alignments (the rules may coincide)
        done: dict = {}
        for s in self._needs():
            if s.kind not in PER_WINDOW:
                continue
            first = torch.cat(p["first"][s.align])
            i = next((i for i, f in enumerate(firsts) if torch.equal(f, first)), None)
            if i is None:
                i, starts = len(firsts), window_starts(first, width, full.shape[1], membership)
                firsts.append(first)
                done[i] = starts
            if (i, s.kind) not in done:
                sums = window_sums if s.kind == "activation" else sorted_window_sums
                done[i, s.kind] = sums(full, *done[i], width)
            self._add(layer, s.key, uniq, done[i, s.kind])

    def _add(self, layer: str, var: str, uniq: torch.Tensor, part: torch.Tensor) -> None:
        sums = self.sums_.setdefault(layer, {})
        totals = self.totals_.setdefault(layer, {})
        shape = tuple(part.shape[1:])
        if var not in sums:
            sums[var] = torch.zeros(
                (_capacity(len(self.groups_)),) + shape, dtype=torch.float64, device=part.device
            )
            totals[var] = torch.zeros(shape, dtype=torch.float64, device=part.device)
        sums[var] = _grow(sums[var], len(self.groups_))
        sums[var].index_add_(0, uniq.to(part.device), part[:-1])  # uniq: distinct groups
        totals[var] += part[-1]

    def merge(self, other: ProfileAccumulator) -> ProfileAccumulator:
        """Add another accumulator's sums and counts into this one (groups matched by name)."""
        self.flush()
        other.flush()
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
        self._merge_top(other.top_, idx, len(other.groups_))
        return self

    def _merge_top(self, tops: dict, idx: torch.Tensor, n: int) -> None:
        """Merge another accumulator's top events (its first ``n`` group rows, which are
        this one's rows ``idx``)."""
        for layer, theirs in tops.items() if len(idx) else ():
            theirs = {f: t[:n] for f, t in theirs.items()}
            topevents.add(self.top_, layer, idx, theirs, len(self.groups_), int(self.top_events))

    def all_reduce(self, device="cpu") -> ProfileAccumulator:
        """Sum this accumulator over all ranks of the process group, in place: every rank
        ends with the total (groups matched by name, stored in sorted order)."""
        from gradnap.profiling.distributed import all_gather_objects, all_reduce_state

        mine = self.state_dict()
        state = all_reduce_state(mine, device)
        tops = all_gather_objects((mine["groups"], mine.get("top", {}))) if self.top_events else []
        for k in ("groups_", "counts_", "n_events_", "sums_", "totals_", "top_"):
            self.__dict__.pop(k, None)
        self._load(state)
        for groups, top in tops:  # a total order: the rank order changes nothing
            self._merge_top(
                top, torch.tensor(self._group_index(groups), dtype=torch.long), len(groups)
            )
        return self

    def state_dict(self) -> dict:
        """Everything accumulated so far (CPU tensors), for checkpoints and reduction."""
        self.flush()
        n = len(self.groups_)
        return {
            "groups": list(self.groups_),
            "counts": self.counts_.clone(),
            "n_events": self.n_events_,
            "sums": {k: {v: t[:n].cpu() for v, t in d.items()} for k, d in self.sums_.items()},
            "totals": {k: {v: t.cpu() for v, t in d.items()} for k, d in self.totals_.items()},
            "top": {k: {f: t[:n].cpu() for f, t in d.items()} for k, d in self.top_.items()},
        }

    def _load(self, state: dict) -> None:
        self._init_state()
        self.groups_ = list(state["groups"])
        self.counts_ = state["counts"].clone()
        self.n_events_ = int(state["n_events"])
        self.sums_ = {k: {v: t.clone() for v, t in d.items()} for k, d in state["sums"].items()}
        self.totals_ = {k: {v: t.clone() for v, t in d.items()} for k, d in state["totals"].items()}
        self.top_ = {
            k: topevents.grow({f: t.clone() for f, t in d.items()}, len(self.groups_))
            for k, d in state.get("top", {}).items()
        }

    @classmethod
    def from_state_dict(
        cls, state: dict, sums=None, neurons=None, top_events=0, top_layers=None
    ) -> ProfileAccumulator:
        acc = cls(sums, neurons, top_events, top_layers)
        acc._load(state)
        return acc

    def means(self, layer: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Per-group means ``(groups, C, W)`` and all-event means ``(C, W)`` of a layer,
        keyed by :attr:`Sum.key` (sorted sums stay ascending along their last axis)."""
        if self.n_events_ == 0:
            raise ValueError("no events were accumulated")
        self.flush()
        counts = self.counts_.to(torch.float64).clamp_min(1)
        group, total = {}, {}
        for var, s in self.sums_[layer].items():
            s = s[: len(self.groups_)]
            group[var] = s / counts.to(s.device)[:, None, None]
            total[var] = self.totals_[layer][var] / self.n_events_
        return group, total


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
