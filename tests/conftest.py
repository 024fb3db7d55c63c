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
