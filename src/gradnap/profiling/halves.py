"""What every streaming profiler shares (:class:`~gradnap.profiling.run.Profiler` for frame
events, :class:`~gradnap.profiling.token_profile.TokenProfiler` for Whisper's token
events): the sums kept in two halves (even and odd utterances, for the split-half
reliability), merged across profilers and processes, saved and restored, and turned into
the result. A profiler provides ``_validate()`` (which sets ``halves_``, ``coverage_``,
``utterances_``, ``variants_``, ``device_``), ``_accumulator(state=None)``,
``_layer_info()`` and ``config()``."""

from __future__ import annotations

import xarray as xr

from gradnap.profiling.accumulate import ProfileAccumulator
from gradnap.profiling.result import build_tree


class SplitHalfSums:
    """Mixin: two :class:`ProfileAccumulator` halves and what is done with them."""

    def _accumulator(self, state: dict | None = None) -> ProfileAccumulator:
        raise NotImplementedError

    def _layer_info(self) -> dict[str, dict]:
        raise NotImplementedError

    @property
    def n_events_(self) -> int:
        """Events profiled so far (both halves)."""
        self._validate()
        return sum(h.n_events_ for h in self.halves_)

    @property
    def acc_(self) -> ProfileAccumulator:
        """Both halves' sums together (a new accumulator)."""
        self._validate()
        acc = self._accumulator()
        return acc.merge(self.halves_[0]).merge(self.halves_[1])

    def merge(self, other):
        """Add another profiler's sums (same settings) into this one."""
        self._validate()
        other._validate()
        for mine, theirs in zip(self.halves_, other.halves_):
            mine.merge(theirs)
        for k, (a, b) in other.coverage_.items():
            self.coverage_.setdefault(k, [0, 0])
            self.coverage_[k][0] += a
            self.coverage_[k][1] += b
        self.utterances_ += other.utterances_
        return self

    def all_reduce(self):
        """Sum the sums (both halves), coverage and utterance count over all ranks of the
        process group, in place (each accumulator through
        :meth:`ProfileAccumulator.all_reduce`)."""
        import torch.distributed as dist

        from gradnap.profiling.distributed import all_gather_objects

        self._validate()
        device = self.device_ if dist.get_backend() == "nccl" else "cpu"
        for half in self.halves_:
            half.all_reduce(device)
        gathered = all_gather_objects((dict(self.coverage_), self.utterances_))
        self.coverage_.clear()
        for coverage, _ in gathered:
            for k, (a, b) in coverage.items():
                self.coverage_.setdefault(k, [0, 0])
                self.coverage_[k][0] += a
                self.coverage_[k][1] += b
        self.utterances_ = sum(n for _, n in gathered)
        return self

    def state_dict(self) -> dict:
        """The sums so far (both halves), coverage and utterance count (for checkpoints)."""
        self._validate()
        return {
            "halves": [h.state_dict() for h in self.halves_],
            "coverage": dict(self.coverage_),
            "utterances": self.utterances_,
        }

    def load_state_dict(self, state: dict):
        self._validate()
        self.halves_ = tuple(self._accumulator(h) for h in state["halves"])
        self.coverage_.clear()
        for k, v in state.get("coverage", {}).items():
            self.coverage_[k] = list(v)
        self.utterances_ = int(state["utterances"])
        return self

    def result(self, extra_config: dict | None = None) -> xr.DataTree:
        """The profiles so far, as a DataTree (see :mod:`gradnap.profiling.result`)."""
        self._validate()
        return build_tree(
            self.acc_,
            self._layer_info(),
            {**self.config(), **(extra_config or {})},
            dict(self.coverage_),
            halves=self.halves_,
            variants=self.variants_,
        )
