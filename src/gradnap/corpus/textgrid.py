"""Phone and word time alignments as Praat TextGrids (praatio).

gradnap writes two interval tiers, ``words`` and ``phones`` (ARPAbet without stress,
``sil`` for pauses). It reads TextGrids from other aligners too (Montreal Forced Aligner:
``words``/``phones`` tiers, stress digits, lowercase, empty or ``sp`` intervals), mapping
their labels with :func:`gradnap.corpus.phones.map_aligner`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from praatio import textgrid

from gradnap.atomic import atomic_write
from gradnap.corpus.phones import SILENCE, PhoneMapError, map_aligner

Interval = tuple[str, float, float]  # (label, start s, end s)


class AlignmentError(ValueError):
    """A TextGrid that cannot be used; the message names the file and the problem."""


@dataclass
class Alignment:
    """Word and phone intervals of one utterance, in seconds."""

    words: list[Interval]
    phones: list[Interval]
    duration: float

    def __post_init__(self) -> None:
        for tier in (self.words, self.phones):
            for label, start, end in tier:
                if not (0 <= start <= end <= self.duration + 1e-6):
                    raise ValueError(
                        f"interval {label!r} [{start}, {end}] outside 0..{self.duration}"
                    )

    @property
    def end(self) -> float:
        """End of the last phone."""
        return self.phones[-1][2] if self.phones else 0.0

    def spoken_phones(self) -> list[Interval]:
        return [p for p in self.phones if p[0] != SILENCE]


def write_textgrid(path: str | Path, alignment: Alignment) -> Path:
    """Write ``alignment`` as a long-format TextGrid, atomically."""
    path = Path(path)
    tg = textgrid.Textgrid()
    duration = round(alignment.duration, 6)
    for name, tier in (("words", alignment.words), ("phones", alignment.phones)):
        entries, last = [], 0.0
        for label, s, e in sorted(tier, key=lambda iv: iv[1]):
            # a microsecond grid, no overlaps, nothing past the end
            s, e = round(max(s, last), 6), min(round(e, 6), duration)
            if e > s:
                entries.append((s, e, label))
                last = e
        tg.addTier(textgrid.IntervalTier(name, entries, 0.0, duration))
    with atomic_write(path) as tmp:
        tg.save(str(tmp), format="long_textgrid", includeBlankSpaces=True)
    return path


def read_textgrid(
    path: str | Path, audio_duration: float | None = None, tolerance: float = 0.1
) -> Alignment:
    """Read the ``words`` and ``phones`` tiers of a TextGrid (gradnap's or an aligner's).

    Phone labels become ARPAbet without stress, ``sil`` (empty, ``sp``, ``sil``) or ``spn``;
    adjacent silences are merged. With ``audio_duration`` the TextGrid's end must lie within
    ``tolerance`` seconds of it, else :class:`AlignmentError` (the alignment is for other
    audio).
    """
    path = Path(path)
    try:
        tg = textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
    except Exception as exc:
        raise AlignmentError(f"{path}: unreadable TextGrid ({exc})") from None
    names = {n.lower(): n for n in tg.tierNames}
    phone_tier = names.get("phones") or names.get("phone")
    if phone_tier is None:
        raise AlignmentError(f"{path}: no 'phones' tier (tiers: {', '.join(tg.tierNames)})")
    phones: list[Interval] = []
    for iv in tg.getTier(phone_tier).entries:
        try:
            label = map_aligner(iv.label)
        except PhoneMapError as exc:
            raise AlignmentError(f"{path}: {exc}") from None
        if phones and label == SILENCE and phones[-1][0] == SILENCE:
            phones[-1] = (SILENCE, phones[-1][1], iv.end)
        else:
            phones.append((label, iv.start, iv.end))
    words: list[Interval] = []
    word_tier = names.get("words") or names.get("word")
    if word_tier is not None:
        for iv in tg.getTier(word_tier).entries:
            label = iv.label.strip().lower()
            if label and label not in ("sil", "sp", "<eps>"):
                words.append((label, iv.start, iv.end))
    duration = float(tg.maxTimestamp)
    if audio_duration is not None and abs(duration - audio_duration) > tolerance:
        raise AlignmentError(
            f"{path}: TextGrid ends at {duration:.3f} s but its audio lasts "
            f"{audio_duration:.3f} s: it does not belong to this audio"
        )
    return Alignment(words, phones, max(duration, phones[-1][2] if phones else 0.0))


def find_alignment(
    utterance,
    alignments: str | Path | None = None,
    root: str | Path | None = None,
    tolerance: float = 0.1,
) -> Alignment:
    """The alignment of a corpus utterance, checked against its audio's duration.

    Looks for ``ID.TextGrid`` beside the audio, or under ``alignments`` (mirroring the
    audio's path below ``root``, or flat).
    """
    candidates = alignment_candidates(utterance, alignments, root)
    for path in candidates:
        if path.is_file():
            return read_textgrid(path, utterance.duration, tolerance)
    raise AlignmentError(
        f"{utterance.audio}: no TextGrid found for {utterance.id} "
        f"(looked at {', '.join(str(c) for c in candidates)})"
    )


def alignment_candidates(
    utterance, alignments: str | Path | None = None, root: str | Path | None = None
) -> list[Path]:
    """Where :func:`find_alignment` looks for an utterance's TextGrid, in order."""
    candidates = [utterance.audio.with_suffix(".TextGrid")]
    if alignments is not None:
        alignments = Path(alignments)
        if root is not None:
            rel = utterance.audio.relative_to(root).with_suffix(".TextGrid")
            candidates.insert(0, alignments / rel)
        candidates.insert(1 if root is not None else 0, alignments / f"{utterance.id}.TextGrid")
    return candidates
