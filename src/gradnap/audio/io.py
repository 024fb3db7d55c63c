"""Reading audio files with clear errors (soundfile / libsndfile)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import soundfile as sf


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def audio_info(path: str | Path) -> tuple[int, int]:
    """Return ``(frames, sample_rate)`` from the file header, checking it is readable.

    A WAV file whose data chunk is shorter than its header says is reported as truncated
    (libsndfile silently reads the shorter length). Compressed formats are only checked
    for truncation when decoded (:func:`load_audio`).
    """
    path = Path(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises its own error types
        raise AudioError(path, f"unreadable audio ({_reason(exc)})") from None
    if info.frames <= 0:
        raise AudioError(path, "audio file holds no samples")
    if path.suffix.lower() == ".wav":
        declared = _wav_declared_frames(path)
        if declared is not None and declared > info.frames:
            raise AudioError(
                path, f"truncated audio (header declares {declared} frames, holds {info.frames})"
            )
    return int(info.frames), int(info.samplerate)


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode an audio file to float32 ``(frames,)`` or ``(frames, channels)`` and its rate.

    Raises :class:`AudioError` naming the file for unreadable or truncated audio.

    >>> wav, sr = load_audio("utt.flac")  # doctest: +SKIP
    """
    path = Path(path)
    frames, _ = audio_info(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=False)
    except Exception as exc:
        raise AudioError(path, f"unreadable or truncated audio ({_reason(exc)})") from None
    if len(data) < frames:
        raise AudioError(path, f"truncated audio (decoded {len(data)} of {frames} frames)")
    return data, int(sr)


def _wav_declared_frames(path: Path) -> int | None:
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes()
    except (wave.Error, EOFError, OSError):
        return None  # not plain PCM: leave the check to libsndfile


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.split(": ", 1)[-1] if text else type(exc).__name__
