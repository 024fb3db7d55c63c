"""The grapheme alphabet: CTC blank, space, apostrophe and the 26 letters."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

BLANK = "<blank>"
DEFAULT_SYMBOLS = (BLANK, " ", "'") + tuple(string.ascii_lowercase)


class Alphabet:
    """Maps transcripts to label indices and back; index 0 is the CTC blank.

    >>> a = Alphabet()
    >>> a.encode("it's"), a.decode(a.encode("it's"))
    ([11, 22, 2, 21], "it's")
    """

    def __init__(self, symbols: Sequence[str] = DEFAULT_SYMBOLS):
        symbols = tuple(symbols)
        if not symbols or symbols[0] != BLANK:
            raise ValueError(f"the first symbol must be the CTC blank {BLANK!r}")
        if len(set(symbols)) != len(symbols):
            raise ValueError("alphabet symbols must be unique")
        self.symbols = symbols
        self.blank = 0
        self._index = {s: i for i, s in enumerate(symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def __eq__(self, other) -> bool:
        return isinstance(other, Alphabet) and other.symbols == self.symbols

    def __repr__(self) -> str:
        return f"Alphabet({''.join(self.symbols[1:])!r})"

    def normalize(self, text: str) -> str:
        """Lowercase, collapse whitespace. Characters are not dropped: see :meth:`invalid`."""
        return re.sub(r"\s+", " ", text.lower()).strip()

    def invalid(self, text: str) -> list[str]:
        """Characters of normalized ``text`` that are not in the alphabet, in order of use."""
        seen: dict[str, None] = {}
        for ch in text:
            if ch not in self._index or ch == BLANK:
                seen[ch] = None
        return list(seen)

    def encode(self, text: str) -> list[int]:
        bad = self.invalid(text)
        if bad:
            raise ValueError(f"characters not in the alphabet: {_describe(bad)}")
        return [self._index[ch] for ch in text]

    def decode(self, labels: Sequence[int]) -> str:
        return "".join(self.symbols[i] for i in labels if i != self.blank)

    def ctc_min_frames(self, text: str) -> int:
        """Fewest output frames CTC needs for ``text``: its length plus one blank per repeat."""
        repeats = sum(1 for a, b in zip(text, text[1:]) if a == b)
        return len(text) + repeats


def _describe(chars: Sequence[str]) -> str:
    return ", ".join(f"{c!r} (U+{ord(c):04X})" for c in chars)
