"""MBROLA us1, us2, us3 through espeak-ng's ``.pho`` output (opt-in, non-free: see
``scripts/enable-non-free-voices.sh``).

The phone timings are exact: mbrola renders the durations written in the ``.pho`` file
(one line per phone, ``label duration_ms [pitch points]``; ``-t`` scales time, ``-f``
pitch). us3's audio lags its ``.pho`` by about 23 ms (speech-data notes), which is added.
The ``.pho`` has no word boundaries: the words tier comes from the forced aligner.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import soundfile as sf

from gradnap.corpus.engines import EngineError, Job, Spoken, aligned, spoken
from gradnap.corpus.phones import map_mbrola, split_interval

DATABASES = Path("/usr/share/mbrola")
LAG = {"us3": 0.023}


def version() -> str:
    exe = shutil.which("mbrola")
    if exe is None:
        return "missing"
    out = subprocess.run([exe, "-h"], capture_output=True, text=True)
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else "mbrola"


def unavailable(voice: str) -> str | None:
    if shutil.which("mbrola") is None or shutil.which("espeak-ng") is None:
        return "mbrola is not installed (opt-in: scripts/enable-non-free-voices.sh)"
    if not (DATABASES / voice / voice).exists():
        return f"MBROLA database {voice} not installed (apt-get install mbrola-{voice})"
    return None


def parse_pho(text: str, stretch: float, lag: float) -> list[tuple[str, float, float]]:
    """``.pho`` lines to ARPAbet intervals in seconds (durations scaled by ``stretch``)."""
    phones, t = [], 0.0
    for line in text.splitlines():
        fields = line.split()
        if not fields or line.startswith(";"):
            continue
        label, dur = fields[0], float(fields[1]) / 1000 * stretch
        arpa = map_mbrola(label)
        start, end = (t + lag if t else 0.0), t + dur + lag
        if phones and arpa == ["sil"] and phones[-1][0] == "sil":
            phones[-1] = ("sil", phones[-1][1], end)
        else:
            phones += split_interval(start, end, arpa)
        t += dur
    return phones


def synthesize(voice: str, jobs: list[Job], workdir: Path) -> list[Spoken]:
    why = unavailable(voice)
    if why:
        raise EngineError(why)
    out = []
    for i, job in enumerate(jobs):
        pho = subprocess.run(
            ["espeak-ng", "-v", f"mb-{voice}", "-q", "--pho", job.text],
            capture_output=True,
            text=True,
        )
        if pho.returncode != 0 or not pho.stdout.strip():
            raise EngineError(f"espeak-ng mb-{voice} failed on {job.uid}: {pho.stderr[-300:]}")
        pho_file, wav = workdir / f"{i}.pho", workdir / f"{i}.wav"
        pho_file.write_text(pho.stdout)
        pitch = 2 ** (job.pitch / 12)
        done = subprocess.run(
            [
                "mbrola",
                "-e",
                "-t",
                f"{job.stretch:.4f}",
                "-f",
                f"{pitch:.4f}",
                str(DATABASES / voice / voice),
                str(pho_file),
                str(wav),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not wav.exists():
            raise EngineError(f"mbrola {voice} failed on {job.uid}: {done.stderr[-300:]}")
        audio, sr = sf.read(wav, dtype="float32")
        phones = parse_pho(pho.stdout, job.stretch, LAG.get(voice, 0.0))
        first = spoken(job.uid, audio, sr, phones, [])
        words = aligned(job.uid, first.audio, job.text, f"mbrola {voice}").words
        out.append(Spoken(job.uid, first.audio, first.phones, words))
    return out
