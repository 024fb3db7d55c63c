"""espeak-ng formant voices through libespeak-ng (ctypes), with phoneme and word events.

Each phoneme event carries the sample where the phoneme starts. espeak joins short
function words into one group ("on the"); such a group is one interval in the words tier,
labelled with all its words.
"""

from __future__ import annotations

import ctypes
import re
import subprocess
from pathlib import Path

import numpy as np

from gradnap.corpus.engines import EngineError, Job, Spoken, spoken
from gradnap.corpus.phones import ESPEAK_MERGE, map_espeak, split_interval

EV_WORD, EV_END, EV_PHONEME, EV_MSG_TERMINATED = 1, 5, 7, 6
DEFAULT_RATE = 175


class _ID(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("uid", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _ID),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class _Espeak:
    """One libespeak-ng instance per process (the library is not re-entrant)."""

    _instance = None

    def __init__(self):
        try:
            self.lib = ctypes.CDLL("libespeak-ng.so.1")
        except OSError:
            raise EngineError("libespeak-ng not found: apt-get install espeak-ng") from None
        self.pcm: list[bytes] = []
        self.events: list[tuple[int, int, int, str]] = []
        self._cb = _CALLBACK(self._on_audio)
        self.rate = self.lib.espeak_Initialize(2, 0, None, 0x0001 | 0x8000)
        if self.rate <= 0:
            raise EngineError("espeak-ng failed to initialize")
        self.lib.espeak_SetSynthCallback(self._cb)

    @classmethod
    def get(cls) -> _Espeak:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def _on_audio(self, wav, n, ev):
        if wav and n > 0:
            self.pcm.append(ctypes.string_at(wav, 2 * n))
        i = 0
        while ev[i].type != 0:
            e = ev[i]
            name = bytes(e.id.string).split(b"\0")[0].decode() if e.type == EV_PHONEME else ""
            self.events.append((e.type, e.sample, e.text_position, name))
            i += 1
        return 0

    def speak(self, voice: str, text: str, rate: int, pitch: int):
        self.pcm, self.events = [], []
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EngineError(f"espeak-ng has no voice {voice!r}")
        self.lib.espeak_SetParameter(1, rate, 0)
        self.lib.espeak_SetParameter(3, pitch, 0)
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None)
        audio = np.frombuffer(b"".join(self.pcm), dtype=np.int16).astype(np.float32) / 32768
        return audio, list(self.events)


def version() -> str:
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return "missing"
    return out.split(":")[1].split("Data")[0].strip() if ":" in out else out.strip()


def synthesize(voice: str, jobs: list[Job], workdir: Path) -> list[Spoken]:
    engine = _Espeak.get()
    out = []
    for job in jobs:
        rate = int(round(DEFAULT_RATE / job.stretch))
        pitch = int(np.clip(50 + 5 * job.pitch, 0, 100))
        audio, events = engine.speak(voice, job.text, rate, pitch)
        if len(audio) == 0:
            raise EngineError(f"espeak-ng {voice} produced no audio for {job.uid}")
        sr = engine.rate
        total = len(audio)
        phones = _phones(events, total, sr)
        words = _words(events, phones, job.text, total, sr)
        out.append(spoken(job.uid, audio, sr, phones, words))
    return out


def _phones(events, total, sr):
    marks = [(s, name) for t, s, _, name in events if t == EV_PHONEME]
    end_sample = next((s for t, s, _, _ in events if t == EV_END), total)
    merged: list[list] = []
    for sample, name in marks:
        if name in ESPEAK_MERGE and merged:
            continue
        merged.append([sample, name])
    phones = []
    for i, (sample, name) in enumerate(merged):
        stop = merged[i + 1][0] if i + 1 < len(merged) else max(end_sample, sample)
        phones += split_interval(sample / sr, stop / sr, map_espeak(name))
    return phones


def _words(events, phones, text, total, sr):
    """Word intervals from word events, snapped to whole words of ``text``."""
    word_starts = [m.start() + 1 for m in re.finditer(r"\S+", text)]  # 1-based like espeak

    def snap(pos):  # the start of the word holding text position ``pos``
        return max([w for w in word_starts if w <= pos] or [word_starts[0]])

    starts = []
    for t, sample, pos, _ in events:
        if t == EV_WORD and (not starts or snap(pos) > starts[-1][1]):
            starts.append((sample, snap(pos)))
    words = []
    for i, (sample, pos) in enumerate(starts):
        next_pos = starts[i + 1][1] if i + 1 < len(starts) else len(text) + 1
        label = text[pos - 1 : next_pos - 1].strip()
        stop = starts[i + 1][0] / sr if i + 1 < len(starts) else total / sr
        first = [p[1] for p in phones if p[0] != "sil" and sample / sr <= p[1] < stop]
        start = first[0] if first else sample / sr
        pause = [p[1] for p in phones if p[0] == "sil" and start < p[1] < stop]
        stop = min([stop] + pause)
        if label and stop > start:
            words.append((label, start, stop))
    return words
