"""Corpus reader: LibriSpeech layout, or audio files with a plain ``.txt`` transcript beside.

LibriSpeech: ``SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac`` with one
``SPEAKER-CHAPTER.trans.txt`` per chapter holding ``UTT-ID TRANSCRIPT`` lines.
Plain: ``NAME.wav`` or ``NAME.flac`` with ``NAME.txt`` beside it; the speaker is the parent
folder's name.

Problems are collected per utterance. By default :func:`read_corpus` raises one
:class:`CorpusError` listing them; with ``skip_bad=True`` the bad utterances are left out
and listed in :attr:`Corpus.skipped`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gradnap.audio.features import FeatureConfig
from gradnap.audio.io import AudioError, audio_info, load_audio
from gradnap.data.alphabet import Alphabet, _describe

AUDIO_SUFFIXES = (".flac", ".wav")
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
) -> Corpus:
    """Find the utterances under ``root`` and check each one.

    Checks: a transcript line for every audio file and an audio file for every line, a
    non-empty transcript, only alphabet characters, a readable (and, with
    ``verify_audio``, fully decodable) audio file, and enough output frames for CTC
    (``ceil(feature_frames / output_stride)`` at least the transcript length plus one per
    repeated letter).

    >>> corpus = read_corpus("LibriSpeech/dev-clean", skip_bad=True)  # doctest: +SKIP
    """
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: corpus folder does not exist")
    alphabet = alphabet or Alphabet()
    fcfg = feature_config or FeatureConfig()
    problems: list[Problem] = []
    utterances: list[Utterance] = []
    for uid, audio, text, where in _find(root, problems):
        try:
            utterances.append(
                _check(uid, audio, text, where, alphabet, output_stride, fcfg, verify_audio)
            )
        except _Bad as bad:
            problems.append(bad.problem)
    if problems and not skip_bad:
        shown = "\n  ".join(str(p) for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise CorpusError(
            f"{root}: {len(problems)} bad utterance(s) (use --skip-bad / skip_bad=True to "
            f"leave them out):\n  {shown}{more}"
        )
    if not utterances:
        why = f" ({len(problems)} skipped as bad)" if problems else ""
        raise CorpusError(
            f"{root}: no utterances found{why}: expected LibriSpeech layout "
            f"(*.trans.txt beside .flac files) or .wav/.flac files with a .txt beside them"
        )
    utterances.sort(key=lambda u: u.id)
    return Corpus(root, utterances, problems)


def _find(root: Path, problems: list[Problem]):
    """Yield ``(id, audio_path, raw_text, (transcript_path, line_prefix))``.

    Audio without a transcript and transcripts without audio are recorded as problems.
    """
    files = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]
    for folder in sorted({p.parent for p in files}):
        audio = {
            p.stem: p
            for p in sorted(folder.iterdir())
            if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".")
        }
        listed: set[str] = set()
        for trans in sorted(folder.glob(f"*{TRANS_SUFFIX}")):
            for lineno, line in enumerate(_read_lines(trans, problems), start=1):
                if not line.strip():
                    continue
                uid, _, text = line.strip().partition(" ")
                where = (trans, f"line {lineno}: ")
                listed.add(uid)
                if uid not in audio:
                    problems.append(Problem(trans, f"line {lineno}: no audio file for {uid}"))
                    continue
                yield uid, audio[uid], text, where
        for stem, path in audio.items():
            if stem in listed:
                continue
            txt = path.with_suffix(".txt")
            if txt.is_file():
                lines = _read_lines(txt, problems)
                yield stem, path, " ".join(lines), (txt, "")
            elif any(folder.glob(f"*{TRANS_SUFFIX}")):
                problems.append(
                    Problem(path, f"no transcript line for {stem} in the folder's *.trans.txt")
                )
            else:
                problems.append(Problem(path, f"no transcript ({txt.name} or *.trans.txt)"))
        for txt in sorted(folder.glob("*.txt")):
            if txt.name.endswith(TRANS_SUFFIX):
                continue
            if not any(txt.with_suffix(s).is_file() for s in AUDIO_SUFFIXES):
                problems.append(Problem(txt, "transcript has no audio file (.flac or .wav)"))


def _read_lines(path: Path, problems: list[Problem]) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
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
