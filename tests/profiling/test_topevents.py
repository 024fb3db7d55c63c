"""Top events per (group, layer, neuron): a brute force over every event is the oracle
(batches of 4 events against one event at a time); merge of halves and a state_dict round
trip change nothing, exactly."""

import io

import numpy as np
import pytest
import torch

from gradnap.models import Wav2Letter
from gradnap.profiling import ModelSpec, Profiler
from gradnap.profiling import sensitivity as backends
from gradnap.profiling.align import align
from gradnap.profiling.groupings import group_name, symbol
from gradnap.profiling.topevents import batch_top, empty, merge_top
from tests.profiling.test_run import utterances

LAYERS = ["input", "conv1", "conv5", "conv10"]
TOP = ("top_activation", "top_utterance", "top_time")


@pytest.fixture(scope="module")
def spec():
    torch.manual_seed(0)
    return ModelSpec.from_wav2letter(Wav2Letter.from_preset("tiny").eval())


def chosen_events(x, seed):
    """Every 3rd output frame, with classes drawn at random (an untrained model predicts
    one letter): many grapheme groups, some with fewer than k events."""
    n_out = -(-x.shape[1] // 2)
    classes = torch.randint(0, 12, (n_out,), generator=torch.Generator().manual_seed(seed))
    return list(range(0, n_out, 3)), classes


def profile(spec, items, start=0, backend="reference", **kw):
    prof = Profiler(
        spec, layers=LAYERS + ["conv11"], group_by=["grapheme", "speaker"], backend=backend,
        top_events=3, **kw,
    )  # fmt: skip
    for i, (x, speaker, _) in enumerate(items, start=start):
        frames, classes = chosen_events(x, i)
        prof.update(x, speaker, frames=frames, classes=classes, index=i)
    return prof


def brute_force(spec, items, k=3):
    """Every event's aligned activation A_l[:, tau_l] by plain per-event autograd, ranked
    per group and neuron: value descending, then utterance, then frame; each (utterance,
    frame) once."""
    events, shared = {}, 0  # (layer, group) -> {(utt, frame): values (C,)}
    for u, (x, speaker, _) in enumerate(items):
        with torch.no_grad():
            logits, acts = spec.forward_with_activations(x[None])
        full = {"input": x, **{n: a[0] for n, a in acts.items()}}
        frames, pred = chosen_events(x, u)
        frames = torch.tensor([t for t in frames if pred[t] != spec.blank])
        windows = backends.reference(spec, x[None], frames, pred[frames], LAYERS)
        for layer in LAYERS:
            width = spec.geometry.support_width(layer)
            crops = align(full[layer], windows[layer], width, layer == "input")
            for e, t in enumerate(frames.tolist()):
                tau = int(crops.tau()[e])
                value = full[layer][:, tau] if 0 <= tau < full[layer].shape[1] else None
                value = torch.zeros(full[layer].shape[0]) if value is None else value
                for g in (
                    group_name("grapheme", symbol(spec.labels[pred[t]])),
                    f"speaker:{speaker}",
                ):
                    shared += (u, tau) in events.setdefault((layer, g), {})
                    events[layer, g][u, tau] = value
    out = {}
    for (layer, g), found in events.items():
        keys = sorted(found)
        values = torch.stack([found[key] for key in keys])  # (events, C)
        tops = []
        for n in range(values.shape[1]):
            ranked = sorted(range(len(keys)), key=lambda i: (-float(values[i, n]), keys[i]))
            tops.append([(float(values[i, n]), *keys[i]) for i in ranked[:k]])
        out[layer, g] = tops
    return out, shared


def test_top_events_equal_a_brute_force_over_every_event(spec):
    items = utterances(3)
    prof = profile(spec, items, batch_events=4)  # several batches per utterance
    tree = prof.result()
    want, shared = brute_force(spec, items)
    assert "top_activation" not in tree["conv11"].to_dataset()  # not for the logits
    for layer in LAYERS:
        ds = tree[layer].to_dataset()
        assert ds["top_activation"].dims == ("group", "neuron", "top")
        assert ds["top_time"].attrs["units"] == "s"
        shape = ds["top_utterance"].shape
        value, utt, time = (
            np.full(shape, np.nan, np.float32),
            np.full(shape, -1),
            np.full(shape, np.nan),
        )
        for i, g in enumerate(ds["group"].values):
            for n, tops in enumerate(want[layer, str(g)]):
                for r, (v, u, frame) in enumerate(tops):
                    value[i, n, r], utt[i, n, r] = v, u
                    time[i, n, r] = spec.timing[layer].time(frame)  # the layer's frame centre
        np.testing.assert_array_equal(ds["top_utterance"].values, utt, err_msg=layer)
        np.testing.assert_array_equal(ds["top_activation"].values, value, err_msg=layer)
        np.testing.assert_allclose(ds["top_time"].values, time, rtol=1e-12, err_msg=layer)
    # some group has fewer than k distinct moments; some neuron's top holds ties at zero;
    # some moment is the alignment point of several events of a group
    assert any(len(tops[0]) < 3 for tops in want.values())
    assert any(t[0] == 0 for tops in want.values() for neuron in tops for t in neuron[1:])
    assert shared > 0


def assert_tops_equal(a, b):
    for layer in LAYERS:
        da, db = a[layer].to_dataset(), b[layer].to_dataset()
        for var in TOP:
            np.testing.assert_array_equal(da[var].values, db[var].values, err_msg=var)


def test_merge_of_halves_and_resume_are_exact(spec):
    # the fast backend, the same batches everywhere (its float32 rounding, and so a tie
    # of the alignment scores, may depend on the batch; the oracle test covers batching)
    items, kw = utterances(5, seed=1), {"backend": "fast", "batch_events": 4}
    whole = profile(spec, items, **kw)
    halves = profile(spec, items[:2], **kw).merge(profile(spec, items[2:], start=2, **kw))
    assert_tops_equal(whole.result(), halves.result())
    # a state_dict through torch.save and torch.load(weights_only=True), then the rest
    first = profile(spec, items[:3], **kw)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    resumed = profile(spec, [], **kw)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    for i, (x, speaker, _) in enumerate(items[3:], start=3):
        frames, classes = chosen_events(x, i)
        resumed.update(x, speaker, frames=frames, classes=classes, index=i)
    assert_tops_equal(whole.result(), resumed.result())


def test_merge_top_is_a_total_order_with_each_moment_once():
    inf = float("-inf")
    a = {
        "value": torch.tensor([[3.0, 1.0, 1.0, inf]]),
        "utterance": torch.tensor([[2, 4, 0, -1]]),
        "frame": torch.tensor([[5, 1, 7, -1]]),
    }
    b = {
        "value": torch.tensor([[3.0, 1.0, 0.5, inf]]),
        "utterance": torch.tensor([[2, 0, 1, -1]]),  # (2, 5) is a's first: counted once
        "frame": torch.tensor([[5, 2, 0, -1]]),
    }
    top = merge_top(a, b, 4)
    assert top["value"].tolist() == [[3.0, 1.0, 1.0, 1.0]]
    assert top["utterance"].tolist() == [[2, 0, 0, 4]]
    assert top["frame"].tolist() == [[5, 2, 7, 1]]
    assert {k: v.tolist() for k, v in merge_top(b, a, 4).items()} == {
        k: v.tolist() for k, v in top.items()
    }
    # utterance indices too large to pack below the value: the same order
    big = {f: {**x, "utterance": x["utterance"].where(x["utterance"] < 0, x["utterance"] << 40)}
           for f, x in (("a", a), ("b", b))}  # fmt: skip
    wide = merge_top(big["a"], big["b"], 4)
    assert wide["utterance"].tolist() == [[2 << 40, 0, 0, 4 << 40]]
    assert wide["frame"].tolist() == top["frame"].tolist()
    # fewer distinct moments than k: empty slots stay at the end
    one = merge_top(empty(1, 1, 3), {k: v[:, :1][:, None] for k, v in a.items()}, 3)
    assert one["utterance"].tolist() == [[[2, -1, -1]]]


def test_batch_top_groups_and_ties():
    full = torch.tensor([[0.0, 2.0, 2.0, 1.0], [5.0, 0.0, 0.0, 0.0]])
    tau = torch.tensor([1, 2, 3, 2, -3])  # the last one aligns outside: its value is zero
    groups = torch.tensor([0, 0, 0, 1, 0, 1, 2])
    events = torch.tensor([0, 1, 3, 1, 4, 4, 2])
    uniq, top = batch_top(full, tau, groups, events, 2)
    assert uniq.tolist() == [0, 1, 2]
    # group 0: frames 1, 2 (twice: once), -3; ties broken by the earlier frame
    assert top["frame"][0].tolist() == [[1, 2], [-3, 1]]
    assert top["value"][0].tolist() == [[2.0, 2.0], [0.0, 0.0]]
    assert top["frame"][2].tolist() == [[3, -1], [3, -1]]


def test_top_events_can_be_turned_off(spec):
    x = utterances(1)[0][0]
    off = Profiler(spec, layers=["conv1"], top_events=0)
    off.update(x)
    assert "top_activation" not in off.result()["conv1"].to_dataset()
    assert off.config()["top_events"] == 0 and not off.state_dict()["halves"][0]["top"]
    with pytest.raises(ValueError, match="top_events"):
        Profiler(spec, layers=["conv1"], top_events=-1).update(x)
