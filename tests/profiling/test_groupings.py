"""Groupings: each one's labels worked out by hand, what they need, the result's
``grouping`` and ``label`` coordinates, and a grouping that reads the alignment point."""

import pytest
import torch

from gradnap.corpus.textgrid import Alignment
from gradnap.profiling import ModelSpec, Profiler
from gradnap.profiling import groupings as G
from tests.profiling.test_method import hand_model


def context(**kw):
    # 5 output frames, 20 ms apart; classes: blank, a, a, space, b
    logits = torch.full((4, 5), -5.0)
    for t, k in enumerate([0, 1, 1, 2, 3]):
        logits[k, t] = 5.0
    base = dict(
        classes=logits.argmax(0),
        logits=logits,
        class_names=["_", "a", " ", "b"],
        blank=0,
        frame_seconds=0.02,
        speaker="s7",
        alignment=Alignment(
            [("ab", 0.01, 0.09)], [("sil", 0.0, 0.01), ("AE", 0.01, 0.05), ("B", 0.05, 0.09)], 0.1
        ),
        transcript="ab",
    )
    return G.EventContext(**{**base, **kw})


def test_each_grouping_by_hand():
    ctx, frames = context(), [1, 2, 3, 4]
    assert G.Grapheme().labels(ctx, frames) == ["a", "a", "<space>", "b"]
    # frame centres 20, 40, 60, 80 ms: AE holds 10-50 ms, B 50-90 ms
    assert G.Phoneme().labels(ctx, frames) == ["AE", "AE", "B", "B"]
    assert G.Word().labels(ctx, [0, 4]) == [None, "ab"]
    assert G.Speaker().labels(ctx, frames) == ["s7"] * 4
    # the forced path of "ab" over classes _ a a <space> b keeps a, then must place b
    path = ctx.ctc_path
    assert path[1] == 1 and path[-1] in (0, 3) and 3 in path
    assert G.Target().labels(ctx, [1, 4]) == ["a", "_" if path[4] == 0 else "b"]
    assert G.Correct().labels(ctx, [1, 3]) == ["yes", "no"]  # a == a; space is not on it


def test_needs_and_registry():
    assert G.Phoneme.needs == {"alignment"} and G.Target.needs == {"transcript", "ctc_path"}
    assert G.needs(["grapheme", "word"], "alignment")
    assert not G.needs(["grapheme", "speaker"], "alignment")
    with pytest.raises(ValueError, match="grouping 'phoneme' needs an alignment"):
        G.Phoneme().check(context(alignment=None))
    with pytest.raises(ValueError, match="grouping 'speaker' needs the utterance's speaker"):
        G.Speaker().check(context(speaker=None))
    with pytest.raises(ValueError, match="unknown grouping"):
        G.make_groupings(["colour"])
    assert [g.name for g in G.make_groupings(["grapheme", G.Speaker()])] == [
        "grapheme",
        "speaker",
    ]
    assert G.split_group(G.group_name("phoneme", "AE")) == ("phoneme", "AE")
    assert G.split_group("word:a:b") == ("word", "a:b")


class PhoneAtInput(G.Grouping):
    """A grouping that labels an event by the phone at the input layer's alignment point."""

    name = "phone_at_input"
    needs = frozenset({"alignment", "alignment_point"})

    def labels(self, ctx, frames):
        out = []
        for seconds in ctx.points["input"].tolist():
            hit = [p for p, a, b in ctx.alignment.phones if a <= seconds < b]
            out.append(hit[0] if hit else None)
        return out


def test_a_grouping_sees_the_alignment_point_and_the_result_has_coordinates():
    # the hand model's events sit at frames 1 and 3 (10 ms frames, stride 1), aligned there
    spec = ModelSpec.from_sequential(hand_model(), labels=["_", "a"])
    spec.hop_seconds = 0.01
    phones = Alignment([], [("X", 0.0, 0.02), ("Y", 0.02, 0.04)], 0.04)
    prof = Profiler(spec, group_by=["speaker", PhoneAtInput()], crop_width=3)
    prof.update(torch.tensor([[1.0, 3, 2, 4]]), speaker="s1", alignment=phones)
    tree = prof.result()
    assert tree["group"].values.tolist() == ["phone_at_input:X", "phone_at_input:Y", "speaker:s1"]
    assert tree["count"].values.tolist() == [1, 1, 2]
    assert tree["grouping"].values.tolist() == ["phone_at_input"] * 2 + ["speaker"]
    assert tree["label"].values.tolist() == ["X", "Y", "s1"]
    assert tree["conv1"].to_dataset()["grouping"].dims == ("group",)  # inherited
    assert G.group_coords(tree)[2] == ["X", "Y", "s1"]


def test_manner_of_articulation_by_hand():
    ctx = context()
    # frame 0 (0 ms) lies in sil, frames 1-2 (20, 40 ms) in AE, frames 3-4 (60, 80 ms) in B
    assert G.Manner().labels(ctx, [0, 1, 2, 3, 4]) == [
        "silence", "vowel", "vowel", "plosive", "plosive",
    ]  # fmt: skip
    table = G.Manner().table
    assert (table["HH"], table["S"], table["CH"], table["W"], table["Y"]) == (
        "fricative", "fricative", "affricate", "glide", "glide",
    )  # fmt: skip
    assert (table["M"], table["NG"], table["L"], table["R"], table["spn"]) == (
        "nasal", "nasal", "liquid", "liquid", "silence",
    )  # fmt: skip
    assert set(table.values()) == {
        "vowel", "plosive", "fricative", "affricate", "nasal", "liquid", "glide", "silence",
    }  # fmt: skip
    # a user mapping replaces the table; phones it lacks get no group
    place = G.Manner({"AE": "front", "B": "labial"}, name="place")
    assert place.labels(context(), [0, 1, 3]) == [None, "front", "labial"]
    assert place.name == "place" and "manner" in G.GROUPINGS
    assert G.needs(["manner"], "alignment")
