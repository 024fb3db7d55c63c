"""Phone labels: the 39 ARPAbet phones of CMUdict (no stress) plus ``sil``, and the maps
from each synthesizer's or aligner's label set to them (../shared/notes/speech-data.md)."""

from __future__ import annotations

import re

ARPABET = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH "
    "UH UW V W Y Z ZH"
).split()
SILENCE = "sil"
SPOKEN_NOISE = "spn"
PHONES = frozenset(ARPABET) | {SILENCE}


class PhoneMapError(ValueError):
    """A label with no mapping to ARPAbet."""


# festival and flite US voices: the "radio" phone set, lowercase ARPAbet plus these.
RADIO = {
    "ax": ["AH"],
    "pau": [SILENCE],
    "h#": [SILENCE],
    "brth": [SILENCE],
    "axr": ["ER"],
    "ix": ["IH"],
    "dx": ["T"],
    "el": ["AH", "L"],
    "em": ["AH", "M"],
    "en": ["AH", "N"],
    "nx": ["N"],
    "hv": ["HH"],
}

# espeak-ng en-us phoneme events (espeak mnemonics).
ESPEAK = {
    "@": ["AH"],
    "@2": ["AH"],
    "@-": ["AH"],
    "a#": ["AH"],
    "V": ["AH"],
    "3": ["ER"],
    "3:": ["ER"],
    "a": ["AE"],
    "aa": ["AE"],
    "0": ["AA"],
    "A:": ["AA"],
    "O:": ["AO"],
    "O2": ["AO"],
    "O": ["AO"],
    "i": ["IY"],
    "i:": ["IY"],
    "I": ["IH"],
    "I#": ["IH"],
    "I2": ["IH"],
    "oU": ["OW"],
    "u:": ["UW"],
    "U": ["UH"],
    "E": ["EH"],
    "eI": ["EY"],
    "aI": ["AY"],
    "OI": ["OY"],
    "aU": ["AW"],
    "t#": ["T"],
    "t2": ["T"],
    "?": ["T"],
    "n-": ["N"],
    "r-": ["R"],
    "A@": ["AA", "R"],
    "O@": ["AO", "R"],
    "o@": ["AO", "R"],
    "e@": ["EH", "R"],
    "i@": ["IY", "R"],
    "i@3": ["IY", "R"],
    "U@": ["UH", "R"],
    "aI@": ["AY", "ER"],
    "aI3": ["AY", "ER"],
    "@L": ["AH", "L"],
    "_": [SILENCE],
    "_:": [SILENCE],
    "_!": [SILENCE],
    "_^_": [SILENCE],
    "||": [SILENCE],
    "p": ["P"],
    "b": ["B"],
    "t": ["T"],
    "d": ["D"],
    "k": ["K"],
    "g": ["G"],
    "tS": ["CH"],
    "dZ": ["JH"],
    "f": ["F"],
    "v": ["V"],
    "T": ["TH"],
    "D": ["DH"],
    "s": ["S"],
    "z": ["Z"],
    "S": ["SH"],
    "Z": ["ZH"],
    "h": ["HH"],
    "m": ["M"],
    "n": ["N"],
    "N": ["NG"],
    "l": ["L"],
    "r": ["R"],
    "w": ["W"],
    "j": ["Y"],
    "l/": ["L"],
    "l/2": ["L"],
    "r/": ["R"],
    "l#": ["L"],
    "3:r": ["ER"],
    "x": ["K"],
    "u": ["UW"],
    "@5": ["AH"],
    "e": ["EH"],
    "I2#": ["IH"],
    "i@r": ["IY", "R"],
    "a2": ["AE"],
    "z/2": ["Z"],
    "d#": ["D"],
    "z#": ["Z"],
    "@r": ["ER"],
    "o:": ["OW"],
}
# espeak marks stress and length with these; ";" (palatalized) merges into the phone before.
ESPEAK_MERGE = {";"}


def map_radio(label: str) -> list[str]:
    """festival/flite label to ARPAbet phones (one label can become two)."""
    if label in RADIO:
        return list(RADIO[label])
    up = label.upper()
    if up in ARPABET:
        return [up]
    raise PhoneMapError(f"festival/flite phone {label!r} has no ARPAbet mapping")


def map_espeak(label: str) -> list[str]:
    """espeak-ng en-us phoneme mnemonic to ARPAbet phones."""
    label = label.strip("',")
    if label in ESPEAK:
        return list(ESPEAK[label])
    raise PhoneMapError(f"espeak-ng phoneme {label!r} has no ARPAbet mapping")


# MBROLA us1/us2/us3 labels (SAMPA, as espeak-ng writes them for mb-us*): one to one
MBROLA = {
    "_": "sil", "p_h": "P", "t_h": "T", "k_h": "K", "4": "T",
    "tS": "CH", "dZ": "JH", "T": "TH", "D": "DH", "S": "SH", "Z": "ZH", "h": "HH",
    "N": "NG", "j": "Y",
    "i": "IY", "I": "IH", "E": "EH", "{": "AE", "A": "AA", "V": "AH", "O": "AO", "U": "UH",
    "u": "UW", "@": "AH", "r=": "ER", "EI": "EY", "AI": "AY", "OI": "OY", "@U": "OW",
    "aU": "AW", "O2": "AO", "l=": "AH L",
    **{c: c.upper() for c in ("p", "b", "t", "d", "k", "g", "f", "v", "s", "z", "m", "n",
                              "l", "r", "w")},
}  # fmt: skip


def map_mbrola(label: str) -> list[str]:
    """MBROLA us1-3 (SAMPA) label to ARPAbet phones (syllabic ``l=`` is AH L) or ``sil``."""
    if label in MBROLA:
        return MBROLA[label].split()
    raise PhoneMapError(f"MBROLA phone {label!r} has no ARPAbet mapping")


def map_aligner(label: str) -> str:
    """An aligner's phone (CMU/MFA style: stress digits, any case) to ARPAbet or sil/spn.

    Empty, ``sp``, ``sil``, ``SIL``, ``<eps>`` become ``sil``; ``spn`` stays ``spn``; the
    pocketsphinx noise phones (``+NSN+``...) become ``spn``. Anything else that is not
    ARPAbet (IPA, for example) raises :class:`PhoneMapError`.
    """
    text = label.strip()
    low = text.lower()
    if low in ("", "sp", "sil", "<eps>", "pau", "silence"):
        return SILENCE
    if low == "spn" or (text.startswith("+") and text.endswith("+")):
        return SPOKEN_NOISE
    base = re.sub(r"[012]$", "", text).upper()
    if base in ARPABET:
        return base
    raise PhoneMapError(
        f"phone {label!r} is not ARPAbet (39 CMUdict phones with optional stress, "
        "sil/sp/spn); IPA or other phone sets are not supported"
    )


def split_interval(start: float, end: float, phones: list[str]) -> list[tuple[str, float, float]]:
    """Share ``[start, end)`` equally among ``phones`` (a label that maps to several)."""
    step = (end - start) / len(phones)
    cuts = [start + i * step for i in range(len(phones))] + [end]
    return [(p, cuts[i], cuts[i + 1]) for i, p in enumerate(phones)]
