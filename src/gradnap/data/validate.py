"""Checking every utterance of a run before the work starts.

:func:`read_corpus` checks what the file headers and transcripts tell. :func:`validate`
goes further, over exactly the utterances a run will use: each audio file is decoded in
full (a truncated FLAC is found only this way; about 400x real time on one loaded core,
a few % of a profiling or training run) and its samples must be finite and small enough
for the float32 features, and the TextGrid that the groupings ``phoneme`` and ``word``
read must be there, belong to the audio and hold a spoken phone (a word). The profile,
train and eval commands run :func:`read_checked`: one error listing every problem with
its file, or with ``skip_bad`` the bad utterances left out and listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from gradnap.audio.features import FeatureConfig
from gradnap.audio.io import AudioError, load_audio
from gradnap.data.alphabet import Alphabet
from gradnap.data.corpus import (
    Corpus,
    CorpusError,
    Problem,
    Utterance,
    find_utterances,
    no_utterances_error,
    problems_error,
)
from gradnap.options import positive_int

# Beyond about 1e19 the power spectrum overflows float32 and the features are NaN; float
# audio belongs in [-1, 1] (integer-scaled float files reach 32768). 1e15 leaves a margin.
MAX_PEAK = 1e15
NEEDS_PHONES, NEEDS_WORDS = ("phoneme",), ("word",)
TEXTGRID_HINT = (
    "(groupings phoneme and word need TextGrids: pass --alignments DIR, or make them with "
    "'gradnap align')"
)


def check_limit(limit: int | None) -> int | None:
    """``limit`` (the first N utterances) if it is None or positive, else ValueError."""
    return None if limit is None else positive_int(limit, "--limit")


def validate(
    utterances: Iterable[Utterance],
    group_by: Sequence[str] = (),
    alignments: str | Path | None = None,
    root: str | Path | None = None,
    decode: bool = True,
    progress: bool = False,
) -> list[Problem]:
    """The problems of ``utterances`` for a run grouped by ``group_by``: one
    :class:`Problem` (file and reason) per bad utterance, in the order given.

    ``decode=False`` skips decoding the audio (the headers were read by the corpus
    reader). TextGrids are looked for as :func:`gradnap.corpus.textgrid.find_alignment`
    does (beside the audio, or under ``alignments`` mirroring the path below ``root``).

    >>> validate(read_corpus("corpus/"), ["phoneme"])  # doctest: +SKIP
    []
    """
    return list(_bad(list(utterances), group_by, alignments, root, decode, progress).values())


def _bad(utterances, group_by, alignments, root, decode, progress) -> dict[str, Problem]:
    """Utterance id -> its problem, for the bad ones."""
    phones = any(g in NEEDS_PHONES for g in group_by)
    words = any(g in NEEDS_WORDS for g in group_by)
    bad = {}
    for utt in tqdm(utterances, desc="checking", unit="utt", disable=not progress, leave=False):
        problem = (decode and _audio_problem(utt)) or (
            (phones or words) and _alignment_problem(utt, alignments, root, phones, words)
        )
        if problem:
            bad[utt.id] = problem
    return bad


def read_checked(
    root: str | Path,
    alphabet: Alphabet | None = None,
    feature_config: FeatureConfig | None = None,
    group_by: Sequence[str] = (),
    alignments: str | Path | None = None,
    skip_bad: bool = False,
    limit: int | None = None,
    decode: bool = True,
    progress: bool = False,
    normalize_text: bool = False,
) -> Corpus:
    """Read a corpus (:func:`gradnap.data.read_corpus`), keep the first ``limit``
    utterances and :func:`validate` them. Without ``skip_bad`` any problem raises one
    :class:`CorpusError` listing them all; with it the bad utterances are left out and
    listed in :attr:`Corpus.skipped`. ``normalize_text`` as for :func:`read_corpus`."""
    root = Path(root)
    check_limit(limit)
    utterances, problems = find_utterances(
        root, alphabet, feature_config=feature_config, normalize_text=normalize_text
    )
    utterances = utterances[:limit] if limit else utterances
    bad = _bad(utterances, group_by, alignments, root, decode, progress)
    problems += bad.values()
    if problems and not skip_bad:
        error = problems_error(root, problems)
        if any("TextGrid" in p.message for p in bad.values()):
            error.args = (f"{error}\n{TEXTGRID_HINT}",)
        raise error
    utterances = [u for u in utterances if u.id not in bad]
    if not utterances:
        raise no_utterances_error(root, problems)
    return Corpus(root, utterances, problems)


def utterance_features(utt: Utterance, config=None):
    """The features ``(F, T)`` of a corpus utterance; ValueError naming its file if
    the audio is bad or the features are not finite. ``config`` is a
    :class:`FeatureConfig` (log-mel) or any callable front end ``(wav, sr) -> (F, T)`` (or
    ``-> ((F, T), n_frames)``: Whisper's padded features and its own frames)."""
    import torch

    from gradnap.audio.features import features

    try:
        wav, sr = utt.load()
        x = config(wav, sr) if callable(config) else features(wav, sr, config)
    except ValueError as exc:  # AudioError names the file already
        raise exc if isinstance(exc, AudioError) else ValueError(f"{utt.audio}: {exc}") from None
    values = x[0] if isinstance(x, tuple) else x  # (features, own frames): Whisper
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{utt.audio}: its features are not finite (NaN or infinite)")
    return x


def _audio_problem(utt: Utterance) -> Problem | None:
    try:
        wav, _ = load_audio(utt.audio)
    except AudioError as exc:
        return Problem(utt.audio, exc.reason)
    finite = np.isfinite(wav)
    if not finite.all():
        return Problem(utt.audio, f"{int((~finite).sum())} NaN or infinite sample(s) of {wav.size}")
    peak = float(np.abs(wav).max())
    if peak > MAX_PEAK:
        return Problem(
            utt.audio,
            f"samples reach {peak:.2g}: float audio belongs in [-1, 1] (the features "
            "would overflow)",
        )
    return None


def _alignment_problem(utt, alignments, root, phones: bool, words: bool) -> Problem | None:
    from gradnap.corpus.phones import SILENCE
    from gradnap.corpus.textgrid import AlignmentError, find_alignment

    try:
        alignment = find_alignment(utt, alignments, root)
    except (AlignmentError, ValueError) as exc:
        return _problem_from(exc, utt.audio)
    where = _found_at(utt, alignments, root)
    if phones and not any(label != SILENCE for label, _, _ in alignment.phones):
        return Problem(where, "no spoken phone in the 'phones' tier (grouping phoneme)")
    if words and not alignment.words:
        return Problem(where, "no word in a 'words' tier (grouping word)")
    return None


def _found_at(utt, alignments, root) -> Path:
    """The TextGrid that find_alignment read."""
    from gradnap.corpus.textgrid import alignment_candidates

    candidates = alignment_candidates(utt, alignments, root)
    return next((c for c in candidates if c.is_file()), candidates[-1])


def _problem_from(exc: Exception, fallback: Path) -> Problem:
    """A Problem from an error whose message starts with ``PATH: ``."""
    head, sep, rest = str(exc).partition(": ")
    if sep and Path(head).exists():
        return Problem(Path(head), rest)
    return Problem(fallback, str(exc))


__all__ = ["MAX_PEAK", "CorpusError", "check_limit", "read_checked", "validate"]
