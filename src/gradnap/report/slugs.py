"""File-name- and HTML-id-safe names for the report (unique per group name)."""

from __future__ import annotations

import hashlib
import re


def slug(text: str) -> str:
    """A file-name- and HTML-id-safe form of a name, unique per name.

    Plain names keep a readable form (``phoneme:AA`` -> ``phoneme-AA``, ``grapheme:<space>``
    -> ``grapheme-space``); any other name gets a short hash of itself appended, so names
    that differ only in punctuation (``speaker:f_01``, ``speaker:f-01``) never share a file
    or an id, whatever characters they hold.
    """
    base = re.sub(r"[^A-Za-z0-9]+", "-", text.replace("<space>", "space")).strip("-") or "x"
    if re.fullmatch(r"[A-Za-z0-9]+(:([A-Za-z0-9]+|<space>))?", text):
        return base
    return f"{base}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:8]}"
