"""Character and word error rates (jiwer)."""

from __future__ import annotations

from collections.abc import Sequence

import jiwer


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
    """Corpus-level ``{"cer": ..., "wer": ...}``: edit operations over reference length.

    Empty hypotheses are allowed (all deletions); references must not be empty.

    >>> error_rates(["the cat"], ["the hat"])
    {'cer': 0.14285714285714285, 'wer': 0.5}
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    if not references:
        raise ValueError("no utterances to score")
    if any(not r.strip() for r in references):
        raise ValueError("a reference transcript is empty")
    refs, hyps = list(references), list(hypotheses)
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    return {"cer": float(chars.cer), "wer": float(words.wer)}
