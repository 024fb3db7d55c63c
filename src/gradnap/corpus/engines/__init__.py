"""Text-to-speech engines with the phone timings they used.

Each engine module has ``synthesize(voice, jobs, workdir) -> list[Spoken]`` and
``version() -> str``. Audio comes back at 16 kHz; phones in ARPAbet + ``sil``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gradnap.corpus.textgrid import Interval


class EngineError(RuntimeError):
    """A synthesizer that is missing or failed on an utterance."""


@dataclass(frozen=True)
class Job:
    """One utterance to speak: id, normalized text, time stretch (>1 slower), pitch shift."""

    uid: str
    text: str
    stretch: float = 1.0
    pitch: float = 0.0  # semitones-ish offset where the engine supports it


@dataclass
class Spoken:
    """What an engine produced for a job."""

    uid: str
    audio: np.ndarray  # float32, 16 kHz
    phones: list[Interval]
    words: list[Interval]


def finish_tiers(phones: list[Interval], duration: float, uid: str, slack: float = 0.03):
    """Make the phone tier cover ``[0, duration]``: pad with ``sil`` or clip a final pause.

    A spoken phone that runs past the audio by more than ``slack`` seconds is an error.
    """
    out = [p for p in phones if p[2] > p[1]]
    if out and out[0][1] > 0:
        out.insert(0, ("sil", 0.0, out[0][1]))
    while out and out[-1][1] >= duration:  # starts after the audio ends
        label = out.pop()[0]
        if label != "sil":
            raise EngineError(f"{uid}: phone {label} starts after the audio ends")
    if out and out[-1][2] > duration:
        label, start, end = out[-1]
        if label != "sil" and end - duration > slack:
            raise EngineError(f"{uid}: phone {label} ends {end - duration:.3f} s after audio")
        out[-1] = (label, start, duration)
    if out and out[-1][2] < duration:
        if out[-1][0] == "sil":
            out[-1] = ("sil", out[-1][1], duration)
        else:
            out.append(("sil", out[-1][2], duration))
    return out


def clip_words(words: list[Interval], duration: float) -> list[Interval]:
    return [(w, s, min(e, duration)) for w, s, e in words if s < duration and e > s]


def radio_phones(ends: list[tuple[str, float]]) -> list[Interval]:
    """festival/flite ``(label, end)`` pairs (each phone starts where the last ended) as
    ARPAbet intervals."""
    from gradnap.corpus.phones import map_radio, split_interval

    phones, start = [], 0.0
    for label, end in ends:
        phones += split_interval(start, end, map_radio(label))
        start = end
    return phones


def spoken(uid: str, audio: np.ndarray, sr: int, phones: list[Interval], words) -> Spoken:
    """Resample to 16 kHz and fit the tiers to the audio's duration."""
    if sr != 16000:
        import librosa

        audio = librosa.resample(np.asarray(audio, np.float32), orig_sr=sr, target_sr=16000)
    duration = len(audio) / 16000
    return Spoken(
        uid,
        np.asarray(audio, np.float32),
        finish_tiers(phones, duration, uid),
        clip_words(words, duration),
    )


@lru_cache(maxsize=1)
def _aligner():
    from gradnap.corpus.align import Aligner

    return Aligner()


def aligned(uid: str, audio: np.ndarray, text: str, what: str):
    """Words and phones for 16 kHz ``audio`` of ``text`` from the forced aligner, for
    engines that give no timings (``what`` names the engine in the error)."""
    from gradnap.corpus.align import AlignError

    try:
        return _aligner().align(audio, 16000, text)
    except AlignError as exc:
        raise EngineError(f"{what}: could not align {uid}: {exc}") from None
