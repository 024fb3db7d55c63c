"""A tiny offline corpus spoken by espeak-ng (Debian ``espeak-ng``), for the demo and tests.

The full multi-voice corpus with phone timings is :mod:`gradnap` issue 4's ``synth``; this
module only needs the ``espeak-ng`` command. Output is LibriSpeech layout: one speaker per
voice, ``SPEAKER/1/SPEAKER-1-NNNN.flac`` at 16 kHz and ``SPEAKER-1.trans.txt``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

import librosa
import soundfile as sf
from tqdm.auto import tqdm

DEFAULT_VOICES = ("en-us", "en-us+f3", "en-gb", "en-us+m5")


class SynthesisError(RuntimeError):
    """The synthesizer is missing or failed."""


def harvard_sentences() -> list[str]:
    """The first 40 Harvard sentences (IEEE 1969), as shipped with gradnap."""
    text = resources.files("gradnap.data").joinpath("harvard.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def normalize_sentence(text: str) -> str:
    """Uppercase, punctuation other than the apostrophe dropped, spaces collapsed."""
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split()).upper()


def espeak_corpus(
    out: str | Path,
    sentences: list[str] | None = None,
    voices: tuple[str, ...] = DEFAULT_VOICES,
    speed: int = 160,
    progress: bool = True,
) -> Path:
    """Speak every sentence with every voice into ``out`` (LibriSpeech layout).

    Each file is written under a temporary name, then renamed, so an interrupted run
    leaves no half-written audio; files already there are kept (a rerun resumes).
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SynthesisError(
            "espeak-ng not found: install it with 'apt-get install espeak-ng' (as root)"
        )
    sentences = sentences or harvard_sentences()
    out = Path(out)
    jobs = [(v, i, s) for v in range(len(voices)) for i, s in enumerate(sentences)]
    for spk in range(len(voices)):
        chapter = out / str(1000 + spk) / "1"
        chapter.mkdir(parents=True, exist_ok=True)
    for v, i, sentence in tqdm(jobs, desc="espeak-ng", unit="utt", disable=not progress):
        speaker = str(1000 + v)
        target = out / speaker / "1" / f"{speaker}-1-{i:04d}.flac"
        if target.exists():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "x.wav"
            cmd = [exe, "-v", voices[v], "-s", str(speed), "-w", str(wav), sentence]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0 or not wav.exists():
                raise SynthesisError(f"espeak-ng failed for voice {voices[v]}: {done.stderr}")
            audio, sr = sf.read(wav, dtype="float32")
        audio = librosa.resample(audio, orig_sr=sr, target_sr=16000)
        tmp_target = target.with_name(target.name + ".part")
        sf.write(tmp_target, audio, 16000, format="FLAC")
        os.replace(tmp_target, target)
    for v in range(len(voices)):
        speaker = str(1000 + v)
        lines = [f"{speaker}-1-{i:04d} {normalize_sentence(s)}" for i, s in enumerate(sentences)]
        trans = out / speaker / "1" / f"{speaker}-1.trans.txt"
        tmp = trans.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, trans)
    return out
