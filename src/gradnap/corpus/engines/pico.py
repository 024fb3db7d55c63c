"""SVOX pico (``pico2wave``, en-US; opt-in, non-free: ``scripts/enable-non-free-voices.sh``).

pico gives audio only; the words and phones come from the forced aligner. Speed and pitch
are set with pico's own markup.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import soundfile as sf

from gradnap.corpus.engines import EngineError, Job, Spoken, aligned, spoken


def version() -> str:
    return "pico2wave (libttspico)" if shutil.which("pico2wave") else "missing"


def unavailable(voice: str) -> str | None:
    if shutil.which("pico2wave") is None:
        return "pico2wave is not installed (opt-in: scripts/enable-non-free-voices.sh)"
    return None


def synthesize(voice: str, jobs: list[Job], workdir: Path) -> list[Spoken]:
    why = unavailable(voice)
    if why:
        raise EngineError(why)
    out = []
    for i, job in enumerate(jobs):
        wav = workdir / f"{i}.wav"
        speed = round(100 / job.stretch)
        pitch = round(100 * 2 ** (job.pitch / 12))
        markup = f'<speed level="{speed}"><pitch level="{pitch}">{job.text}</pitch></speed>'
        done = subprocess.run(
            ["pico2wave", "-l", voice, "-w", str(wav), markup], capture_output=True, text=True
        )
        if done.returncode != 0 or not wav.exists():
            raise EngineError(f"pico2wave {voice} failed on {job.uid}: {done.stderr[-300:]}")
        audio, sr = sf.read(wav, dtype="float32")
        first = spoken(job.uid, audio, sr, [], [])
        al = aligned(job.uid, first.audio, job.text, f"pico {voice}")
        out.append(spoken(job.uid, first.audio, 16000, al.phones, al.words))
    return out
