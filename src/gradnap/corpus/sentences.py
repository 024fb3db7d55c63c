"""Offline sentence sources, normalized to the grapheme alphabet.

Sources (../shared/notes/speech-data.md, section 4): the 720 Harvard sentences (IEEE 1969,
shipped with gradnap) and the usage examples in WordNet 3.0's glosses (Debian
``wordnet-base``, read from /usr/share/wordnet when installed).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from num2words import num2words

WORDNET_DIR = Path("/usr/share/wordnet")


def normalize(text: str) -> str | None:
    """Lowercase words of letters and apostrophes, numbers spelled out; None if unusable.

    >>> normalize("It's 42 o'clock -- really!")
    "it's forty two o'clock really"
    """
    text = re.sub(r"\d+(\.\d+)?", lambda m: " " + num2words(m.group()) + " ", text)
    text = text.lower().replace("-", " ").replace("\u2019", "'")
    if re.search(r"[^\x00-\x7f]", text):
        return None
    text = re.sub(r"[^a-z' ]", " ", text)
    words = [w.strip("'") for w in text.split()]
    words = [w for w in words if w]
    return " ".join(words) if words else None


def harvard() -> list[str]:
    """The 720 Harvard sentences, as written (punctuation included)."""
    text = resources.files("gradnap.corpus").joinpath("harvard.txt").read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def wordnet_examples(folder: Path = WORDNET_DIR) -> list[str]:
    """Quoted usage examples from WordNet's data files (empty if WordNet is not installed)."""
    out = []
    for pos in ("noun", "verb", "adj", "adv"):
        path = folder / f"data.{pos}"
        if not path.is_file():
            continue
        for line in path.read_text("latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue
            out.extend(re.findall(r'"([^"]+)"', line.split("|", 1)[1]))
    return out


def sentences(min_words: int = 4, max_words: int = 30) -> dict[str, list[str]]:
    """Normalized, de-duplicated sentences per source: ``{"harvard": [...], "wordnet": [...]}``.

    A sentence that occurs in an earlier source is not repeated in a later one.
    """
    seen: set[str] = set()
    out: dict[str, list[str]] = {}
    for name, raw in (("harvard", harvard()), ("wordnet", wordnet_examples())):
        kept = []
        for s in raw:
            n = normalize(s)
            if n and min_words <= len(n.split()) <= max_words and n not in seen:
                seen.add(n)
                kept.append(n)
        out[name] = kept
    return out
