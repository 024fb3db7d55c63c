"""Corpus reader: LibriSpeech layout, or audio files with a plain ``.txt`` transcript beside.

LibriSpeech: ``SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac`` with one
``SPEAKER-CHAPTER.trans.txt`` per chapter holding ``UTT-ID TRANSCRIPT`` lines.
Plain: ``NAME.wav``, ``.flac``, ``.mp3``, ``.ogg`` or ``.opus`` with ``NAME.txt`` (or
``NAME.lab``, the Montreal Forced Aligner's convention) beside it; the speaker is the parent
folder's name. ``normalize_text=True`` lowercases transcripts, drops punctuation and spells
out digits (:func:`gradnap.corpus.sentences.normalize`) before the alphabet check. Audio
below 16 kHz gives a warning (it is resampled up; its high frequencies are missing).

Problems are collected per utterance. By default :func:`read_corpus` raises one
:class:`CorpusError` listing them; with ``skip_bad=True`` the bad utterances are left out
and listed in :attr:`Corpus.skipped`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gradnap.audio.features import FeatureConfig
from gradnap.audio.io import AudioError, audio_info, load_audio
from gradnap.data.alphabet import Alphabet, _describe

AUDIO_SUFFIXES = (".flac", ".wav", ".mp3", ".ogg", ".opus")
TEXT_SUFFIXES = (".txt", ".lab")  # .lab: the Montreal Forced Aligner's transcripts
LOW_RATE = 16000
TRANS_SUFFIX = ".trans.txt"


class CorpusError(ValueError):
    """A corpus, or a file in it, that cannot be used; the message names the file."""


class _Bad(Exception):
    def __init__(self, path: Path, message: str):
        self.problem = Problem(Path(path), message)


@dataclass(frozen=True)
class Problem:
    """One skipped file and why."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Utterance:
    """One utterance: audio file, normalized transcript, speaker and duration."""

    id: str
    audio: Path
    text: str
    speaker: str
    num_samples: int
    sample_rate: int

    @property
    def duration(self) -> float:
        """Seconds of audio."""
        return self.num_samples / self.sample_rate

    def load(self) -> tuple[np.ndarray, int]:
        """Decode the audio: ``(samples, sample_rate)``; :class:`AudioError` if it is bad."""
        return load_audio(self.audio)


@dataclass
class Corpus(Sequence):
    """The usable utterances of a folder, sorted by id, plus what was skipped."""

    root: Path
    utterances: list[Utterance]
    skipped: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, i):
        return self.utterances[i]

    def __iter__(self) -> Iterator[Utterance]:
        return iter(self.utterances)

    @property
    def duration(self) -> float:
        return sum(u.duration for u in self.utterances)

    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.utterances})

    def subset(self, ids) -> Corpus:
        keep = set(ids)
        return Corpus(self.root, [u for u in self.utterances if u.id in keep], self.skipped)

    def split(self, dev_fraction: float = 0.1) -> tuple[Corpus, Corpus]:
        """Deterministic split by a hash of the utterance id: ``(train, dev)``."""

        def is_dev(u: Utterance) -> bool:
            h = int(hashlib.sha1(u.id.encode()).hexdigest()[:8], 16)
            return h / 0xFFFFFFFF < dev_fraction

        dev = [u for u in self.utterances if is_dev(u)]
        train = [u for u in self.utterances if not is_dev(u)]
        return Corpus(self.root, train, self.skipped), Corpus(self.root, dev, self.skipped)


def read_corpus(
    root: str | Path,
    alphabet: Alphabet | None = None,
    skip_bad: bool = False,
    output_stride: int = 2,
    feature_config: FeatureConfig | None = None,
    verify_audio: bool = False,
    normalize_text: bool = False,
) -> Corpus:
    """Find the utterances under ``root`` and check each one.

    Checks: a transcript line for every audio file and an audio file for every line, one
    utterance per id, a non-empty transcript, only alphabet characters, a readable (and,
    with ``verify_audio``, fully decodable) audio file, and enough output frames for CTC
    (``ceil(feature_frames / output_stride)`` at least the transcript length plus one per
    repeated letter). Symbolic links to folders are followed (each folder once); folders
    that cannot be listed are reported. Transcripts may start with a UTF-8 byte-order mark
    and separate the id from the text by spaces or tabs. ``normalize_text``: lowercase,
    punctuation dropped, digits spelled out before the alphabet check (else a comma or a
    digit makes the utterance bad). Audio below 16 kHz gives a :class:`UserWarning`.

    >>> corpus = read_corpus("LibriSpeech/dev-clean", skip_bad=True)  # doctest: +SKIP
    """
    root = Path(root)
    utterances, problems = find_utterances(
        root, alphabet, output_stride, feature_config, verify_audio, normalize_text
    )
    if problems and not skip_bad:
        raise problems_error(root, problems)
    if not utterances:
        raise no_utterances_error(root, problems)
    return Corpus(root, utterances, problems)


def problems_error(root: Path, problems: list[Problem]) -> CorpusError:
    """One error listing the problems (the first 20, and how many more)."""
    shown = "\n  ".join(str(p) for p in problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    return CorpusError(
        f"{root}: {len(problems)} bad utterance(s) (use --skip-bad / skip_bad=True to "
        f"leave them out):\n  {shown}{more}"
    )


def no_utterances_error(root: Path, problems: list[Problem]) -> CorpusError:
    why = f" ({len(problems)} skipped as bad)" if problems else ""
    return CorpusError(
        f"{root}: no utterances found{why}: expected LibriSpeech layout "
        f"(*.trans.txt beside .flac files) or audio files (.wav/.flac/.mp3/.ogg/.opus) with a .txt "
        f"or .lab beside them"
    )


def find_utterances(
    root: Path,
    alphabet: Alphabet | None = None,
    output_stride: int = 2,
    feature_config: FeatureConfig | None = None,
    verify_audio: bool = False,
    normalize_text: bool = False,
) -> tuple[list[Utterance], list[Problem]]:
    """The good utterances under ``root`` (sorted by id) and the problems found, without
    raising for bad ones (:func:`read_corpus` does)."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: corpus folder does not exist")
    alphabet = alphabet or Alphabet()
    fcfg = feature_config or FeatureConfig()
    problems: list[Problem] = []
    found: dict[str, list] = {}
    for uid, audio, text, where in _find(root, problems):
        found.setdefault(uid, []).append((audio, text, where))
    utterances: list[Utterance] = []
    for uid, copies in found.items():
        if len(copies) > 1:  # which copy is right cannot be known: none is used
            places = [f"{trans} {line}".rstrip(": ") for _, _, (trans, line) in copies]
            for k, (_, _, (trans, line)) in enumerate(copies):
                others = "; ".join(p for m, p in enumerate(places) if m != k)
                problems.append(Problem(trans, f"{line}duplicate id {uid} (also at {others})"))
            continue
        audio, text, where = copies[0]
        try:
            if normalize_text:
                text = _normalize(text)
            utterances.append(
                _check(uid, audio, text, where, alphabet, output_stride, fcfg, verify_audio)
            )
        except _Bad as bad:
            problems.append(bad.problem)
    utterances.sort(key=lambda u: u.id)
    _warn_low_rate(root, utterances)
    return utterances, problems


def _normalize(text: str) -> str:
    """Lowercase, punctuation dropped, digits spelled out; the text unchanged if that
    leaves nothing (non-ASCII letters: the alphabet check then names them)."""
    from gradnap.corpus.sentences import normalize

    return normalize(text) or text


def _warn_low_rate(root: Path, utterances: list[Utterance]) -> None:
    low = [u for u in utterances if u.sample_rate < LOW_RATE]
    if low:
        rates = sorted({u.sample_rate for u in low})
        warnings.warn(
            f"{root}: {len(low)} utterance(s) sampled below 16 kHz "
            f"({', '.join(f'{r} Hz' for r in rates)}; e.g. {low[0].audio}): resampled up, "
            "their high frequencies are missing",
            UserWarning,
            stacklevel=3,
        )


def _walk(root: Path, problems: list[Problem]):
    """``(folder, file names)`` under ``root``, sorted, following symbolic links to folders
    (each real folder once, so link cycles end); unlistable folders become problems."""
    seen: set[str] = set()

    def unreadable(exc: OSError) -> None:
        problems.append(Problem(Path(exc.filename), f"unreadable folder ({exc.strerror})"))

    out = []
    for folder, dirs, files in os.walk(root, onerror=unreadable, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        out.append((Path(folder), sorted(f for f in files if not f.startswith("."))))
    return sorted(out)


def _find(root: Path, problems: list[Problem]):
    """Yield ``(id, audio_path, raw_text, (transcript_path, line_prefix))``.

    Audio without a transcript and transcripts without audio are recorded as problems.
    """
    for folder, names in _walk(root, problems):
        if not names:
            continue
        audio = {
            Path(n).stem: folder / n for n in names if Path(n).suffix.lower() in AUDIO_SUFFIXES
        }
        transcripts = [folder / n for n in names if n.endswith(TRANS_SUFFIX)]
        listed: set[str] = set()
        for trans in transcripts:
            for lineno, line in enumerate(_read_lines(trans, problems), start=1):
                if not line.strip():
                    continue
                uid, text = (line.split(None, 1) + [""])[:2]  # spaces or a tab
                where = (trans, f"line {lineno}: ")
                listed.add(uid)
                if uid not in audio:
                    problems.append(Problem(trans, f"line {lineno}: no audio file for {uid}"))
                    continue
                yield uid, audio[uid], text, where
        for stem, path in audio.items():
            if stem in listed:
                continue
            txt = next(
                (t for t in map(path.with_suffix, TEXT_SUFFIXES) if t.is_file()),
                path.with_suffix(".txt"),
            )
            if txt.is_file():
                lines = _read_lines(txt, problems)
                yield stem, path, " ".join(lines), (txt, "")
            elif transcripts:
                problems.append(
                    Problem(path, f"no transcript line for {stem} in the folder's *.trans.txt")
                )
            else:
                problems.append(
                    Problem(path, f"no transcript ({txt.name}, {stem}.lab or *.trans.txt)")
                )
        for name in names:
            if not name.endswith(TEXT_SUFFIXES) or name.endswith(TRANS_SUFFIX):
                continue
            txt = folder / name
            if not any(txt.with_suffix(s).is_file() for s in AUDIO_SUFFIXES):
                problems.append(
                    Problem(txt, "transcript has no audio file (.flac, .wav, .mp3, .ogg or .opus)")
                )


def _read_lines(path: Path, problems: list[Problem]) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()  # a byte-order mark is fine
    except (UnicodeDecodeError, OSError) as exc:
        problems.append(Problem(path, f"unreadable transcript ({exc})"))
        return []


def _check(uid, audio, text, where, alphabet, output_stride, fcfg, verify_audio) -> Utterance:
    trans, line = where
    norm = alphabet.normalize(text)
    if not norm:
        raise _Bad(trans, f"{line}empty transcript for {uid}")
    bad = alphabet.invalid(norm)
    if bad:
        raise _Bad(trans, f"{line}characters not in the alphabet for {uid}: {_describe(bad)}")
    try:
        frames, sr = audio_info(audio)
        if verify_audio:
            load_audio(audio)
    except AudioError as exc:
        raise _Bad(audio, exc.reason) from None
    n16 = int(round(frames * fcfg.sample_rate / sr))
    out_frames = -(-fcfg.n_frames(n16) // output_stride)
    need = alphabet.ctc_min_frames(norm)
    if out_frames < need:
        raise _Bad(
            audio,
            f"audio too short for its transcript ({frames / sr:.2f} s gives {out_frames} "
            f"output frames, CTC needs {need} for {len(norm)} characters)",
        )
    speaker = uid.split("-")[0] if "-" in uid else audio.parent.name
    return Utterance(uid, audio, norm, speaker, frames, sr)
