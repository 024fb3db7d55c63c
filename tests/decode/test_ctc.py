import numpy as np
import pytest
import torch

from gradnap.data import Alphabet
from gradnap.decode import BeamSearchDecoder, greedy_decode

A = Alphabet()


def scores(path: str, low: float = -20.0) -> np.ndarray:
    """One frame per character of ``path`` ('_' is the blank), log-prob 0 on that symbol."""
    lp = np.full((len(path), len(A)), low, dtype=np.float32)
    for t, ch in enumerate(path):
        lp[t, 0 if ch == "_" else A.symbols.index(ch)] = 0.0
    return lp


@pytest.mark.parametrize(
    "path, text",
    [
        ("hhe_ll_lo", "hello"),
        ("__a_b__", "ab"),
        ("it's  ok", "it's ok"),
        ("____", ""),
        ("_a a_", "a a"),
    ],
)
def test_greedy_and_beam_on_hand_made_paths(path, text):
    lp = scores(path)
    assert greedy_decode(lp, A) == text
    assert greedy_decode(torch.from_numpy(lp), A) == text
    assert BeamSearchDecoder(A, beam_width=8).decode(lp) == text


def test_beam_sums_paths_where_greedy_does_not():
    # Two frames, p(blank)=0.6, p(a)=0.4: the best path is blank-blank (0.36), but the
    # label "a" collects a-a, a-blank and blank-a: 0.16 + 0.24 + 0.24 = 0.64.
    lp = np.full((2, len(A)), np.log(1e-6), dtype=np.float32)
    lp[:, 0] = np.log(0.6)
    lp[:, A.symbols.index("a")] = np.log(0.4)
    assert greedy_decode(lp, A) == ""
    assert BeamSearchDecoder(A, beam_width=16).decode(lp) == "a"


def test_shape_error():
    with pytest.raises(ValueError, match="time, classes"):
        greedy_decode(np.zeros(5), A)
