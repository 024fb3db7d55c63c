"""CTC decoding: greedy (best path) and beam search (pyctcdecode)."""

from __future__ import annotations

import logging
from functools import cached_property

import numpy as np
import torch

from gradnap.data.alphabet import Alphabet


def greedy_decode(log_probs: np.ndarray | torch.Tensor, alphabet: Alphabet) -> str:
    """Best-path decoding of one utterance's ``(T, K)`` scores: argmax, merge repeats, drop blanks.

    >>> a = Alphabet(); lp = np.full((4, len(a)), -9.0)
    >>> for t, k in enumerate([a.symbols.index("h"), 0, a.symbols.index("i"), 0]): lp[t, k] = 0
    >>> greedy_decode(lp, a)
    'hi'
    """
    scores = _as_numpy(log_probs)
    best = scores.argmax(axis=1)
    keep = np.ones_like(best, dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    return _tidy(alphabet.decode(best[keep].tolist()))


def greedy_decode_labels(log_probs, labels: list[str], blank: int = 0) -> str:
    """Best-path decoding over a model's own labels (a Hugging Face vocabulary): argmax,
    merge repeats, drop the blank and special tokens (``<s>``, ``</s>``, ``<unk>``: a label
    in angle brackets); ``" "`` (the word separator ``|``) separates words.

    >>> lp = np.full((5, 4), -9.0); lp[[0, 1, 2, 3, 4], [2, 2, 0, 1, 3]] = 0
    >>> greedy_decode_labels(lp, ["<pad>", " ", "a", "b"])
    'a b'
    """
    scores = _as_numpy(log_probs)
    best = scores.argmax(axis=1)
    keep = np.ones_like(best, dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    out = []
    for k in best[keep].tolist():
        label = labels[k]
        if k == blank or (len(label) > 2 and label.startswith("<") and label.endswith(">")):
            continue
        out.append(label)
    return _tidy("".join(out))


class BeamSearchDecoder:
    """CTC beam search over graphemes (pyctcdecode), optionally with a KenLM model.

    ``decode`` takes one utterance's ``(T, K)`` log-probabilities (log-softmax output).
    """

    def __init__(
        self,
        alphabet: Alphabet,
        beam_width: int = 32,
        kenlm_model_path: str | None = None,
        unigrams: list[str] | None = None,
    ):
        self.alphabet = alphabet
        self.beam_width = beam_width
        self.kenlm_model_path = kenlm_model_path
        self.unigrams = unigrams

    @cached_property
    def _decoder(self):
        # pyctcdecode warns at import that kenlm is missing; it is optional here.
        logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
        from pyctcdecode import build_ctcdecoder

        labels = [""] + list(self.alphabet.symbols[1:])
        return build_ctcdecoder(
            labels, kenlm_model_path=self.kenlm_model_path, unigrams=self.unigrams
        )

    def decode(self, log_probs: np.ndarray | torch.Tensor) -> str:
        scores = _as_numpy(log_probs).astype(np.float32)
        return _tidy(self._decoder.decode(scores, beam_width=self.beam_width))


def _as_numpy(x) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"expected (time, classes) scores, got shape {arr.shape}")
    return arr


def _tidy(text: str) -> str:
    return " ".join(text.split())
