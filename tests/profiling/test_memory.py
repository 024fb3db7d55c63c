"""Bounded memory: nothing grows with the number of utterances, no T x S Viterbi table."""

import tracemalloc

import numpy as np
import pytest
import torch

from gradnap.models import Wav2Letter
from gradnap.profiling import ModelSpec, Profiler
from gradnap.profiling.events import ctc_forced_alignment


def viterbi_table(log_probs, target, blank=0):
    """The plain Viterbi with a full T x S table (the previous implementation): the oracle."""
    lp = log_probs.double().numpy()
    ext = [blank]
    for k in target:
        ext += [k, blank]
    n_t, n_s = lp.shape[0], len(ext)
    score = np.full((n_t, n_s), -np.inf)
    back = np.zeros((n_t, n_s), dtype=np.int64)
    ok = np.array([s >= 2 and ext[s] != blank and ext[s] != ext[s - 2] for s in range(n_s)])
    score[0, :2] = lp[0, ext[:2]]
    for t in range(1, n_t):
        prev = score[t - 1]
        step = np.concatenate([[-np.inf], prev[:-1]])
        skip = np.where(ok, np.concatenate([[-np.inf, -np.inf], prev[:-2]]), -np.inf)
        cand = np.stack([prev, step, skip])
        back[t] = cand.argmax(0)
        score[t] = cand[back[t], np.arange(n_s)] + lp[t, ext]
    s = max([n_s - 1, n_s - 2], key=lambda j: score[-1, j])
    if not np.isfinite(score[-1, s]):
        raise ValueError("too short")
    path = [0] * n_t
    for t in range(n_t - 1, -1, -1):
        path[t] = ext[s]
        s -= back[t, s]
    return path


def test_viterbi_equals_the_full_table_whatever_the_block():
    rng = np.random.default_rng(0)
    for trial in range(120):
        n_t, k = int(rng.integers(1, 40)), int(rng.integers(2, 6))
        target = [int(v) for v in rng.integers(1, k, int(rng.integers(1, n_t // 2 + 2)))]
        lp = torch.log_softmax(torch.tensor(rng.standard_normal((n_t, k)) * 3), -1)
        if trial % 2:
            lp = torch.round(lp)  # many ties
        try:
            want = viterbi_table(lp, target)
        except ValueError:
            with pytest.raises(ValueError):
                ctc_forced_alignment(lp, target)
            continue
        for block in (None, 1, 3, 1000):
            assert ctc_forced_alignment(lp, target, block=block) == want


def test_viterbi_holds_no_frames_by_states_table():
    n_t, n_s = 3000, 2 * 1000 + 1
    lp = torch.log_softmax(torch.randn(n_t, 29), -1)
    target = [int(v) for v in np.random.default_rng(1).integers(1, 29, 1000)]
    tracemalloc.start()
    ctc_forced_alignment(lp, target)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < n_t * n_s / 4  # the table of one-byte back-pointers alone would be T x S


def test_fast_path_keeps_no_autograd_graph():
    """The fast path's transposed convolutions use the weights, which require grad: run
    under autograd they chained every utterance's tensors into the sums (~60 MB an
    utterance with the bundled model)."""
    torch.manual_seed(0)
    spec = ModelSpec.from_wav2letter(Wav2Letter.from_preset("tiny").train(False))
    assert any(p.requires_grad for p in spec.model.parameters())
    prof = Profiler(spec, backend="fast", include_blank=True)
    for i in range(2):
        prof.update(torch.randn(128, 150), "s", index=i)
    tensors = [
        t
        for half in prof.halves_
        for per in (*half.sums_.values(), *half.totals_.values())
        for t in per.values()
    ]
    assert tensors and not any(t.requires_grad or t.grad_fn is not None for t in tensors)


def test_heap_threshold_is_fixed_on_glibc():
    import platform

    from gradnap.profiling.heap import bound_heap

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert bound_heap() is True
