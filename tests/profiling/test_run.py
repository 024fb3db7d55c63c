"""Streaming profiles: invariances, merge, results on disk, errors."""

import numpy as np
import pytest
import torch

from gradnap.corpus.textgrid import Alignment
from gradnap.models import Wav2Letter
from gradnap.profiling import ModelSpec, Profiler, load_profiles, save_profiles, to_table
from gradnap.profiling.result import config_of


@pytest.fixture(scope="module")
def spec():
    torch.manual_seed(0)
    return ModelSpec.from_wav2letter(Wav2Letter.from_preset("tiny").eval())


def utterances(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        t_in = 120 + 7 * i
        phones = [("sil", 0.0, 0.2), ("AH", 0.2, 0.5), ("T", 0.5, 0.9), ("sil", 0.9, t_in / 100)]
        out.append(
            (
                torch.randn(128, t_in, generator=g),
                f"s{i % 2}",
                Alignment([("at", 0.2, 0.9)], phones, t_in / 100),
            )
        )
    return out


def run(spec, items, start=0, **kw):
    prof = Profiler(spec, group_by=["grapheme", "phoneme", "speaker", "word"], **kw)
    for i, (x, speaker, alignment) in enumerate(items):
        prof.update(x, speaker, alignment, index=start + i)
    return prof


def assert_trees_close(a, b, skip=()):
    """Equal up to float32 rounding of the per-event gradients (the GEMM blocking of a
    batch of 1 and of 1000 events differs): 1e-6 of each variable's largest magnitude."""
    assert list(a["group"].values) == list(b["group"].values) or sorted(
        a["group"].values
    ) == sorted(b["group"].values)
    for layer in a.children:
        da, db = a[layer].to_dataset(), b[layer].to_dataset()
        db = db.sel(group=da["group"].values)
        for var in set(da.data_vars) - set(skip):
            scale = max(float(np.nan_to_num(np.abs(da[var].values)).max()), 1e-30)
            np.testing.assert_allclose(
                da[var].values, db[var].values, rtol=0, atol=1e-6 * scale, err_msg=f"{layer}/{var}"
            )


def test_batching_and_event_order_do_not_matter(spec):
    # the input, a strided layer, a wide middle one and the one-frame top: one event per
    # batch through every layer costs a minute and shows nothing more
    items, layers = utterances(3), ["input", "conv1", "conv5", "conv10"]
    one = run(spec, items, batch_events=1, layers=layers).result()
    many = run(spec, items, batch_events=1000, layers=layers).result()
    reversed_order = run(spec, items[::-1], batch_events=7, layers=layers).result()
    assert_trees_close(one, many)
    # the halves of the split-half reliability and the utterance indices of the top
    # events follow the utterance order (the top values do not)
    assert_trees_close(one, reversed_order, skip=("split_half_r", "top_utterance", "top_time"))


def test_merge_of_halves_equals_one_pass(spec):
    items = utterances(6)
    whole = run(spec, items).result()
    first, second = run(spec, items[:3]), run(spec, items[3:], start=3)
    merged = first.merge(second).result()
    assert_trees_close(whole, merged)
    assert merged["count"].sum() == whole["count"].sum()


def test_result_layout_and_round_trip(spec, tmp_path):
    tree = run(spec, utterances(), layers=["input", "conv1", "conv9"]).result()
    assert set(tree.children) == {"input", "conv1", "conv9"}
    ds = tree["input"].to_dataset()
    assert ds["gradnap"].dims == ("group", "neuron", "offset")
    assert ds["nap"].dims == ("group", "neuron", "rank")
    assert ds.sizes["offset"] == 194 and tree["conv1"].to_dataset().sizes["offset"] == 74
    assert ds["frequency"].attrs["units"] == "Hz" and float(ds["frequency"][-1]) > 7000
    assert float(tree["conv1"].to_dataset()["offset_ms"][0]) == -37 * 20.0
    groups = set(tree["group"].values)
    assert {"phoneme:AH", "phoneme:T", "speaker:s0", "word:at"} <= groups
    assert config_of(tree)["backend"] == "fast"
    path = save_profiles(tree, tmp_path / "p.nc")
    back = load_profiles(path)
    assert back.identical(tree)
    table = to_table(back, "conv1")
    assert list(table.columns[:3]) == ["group", "neuron", "offset"]
    assert len(table) == tree["conv1"].to_dataset()["gradnap"].size


def test_coverage_table(spec):
    tree = run(spec, utterances(), include_blank=True).result()
    cov = tree.to_dataset()
    assert int(cov["segments_with_events"].sel(phone="AH")) == 4
    assert int(cov["segments_without_events"].sel(phone="AH")) == 0


def test_neuron_subset_and_wider_crop(spec):
    prof = Profiler(spec, layers=["conv2"], neurons={"conv2": [0, 5]}, crop_width="receptive_field")
    for x, speaker, _ in utterances(2):
        prof.update(x, speaker)
    ds = prof.result()["conv2"].to_dataset()
    assert ds["neuron"].values.tolist() == [0, 5] and ds.sizes["offset"] == 97


def test_errors(spec):
    x = torch.randn(128, 50)
    with pytest.raises(KeyError, match="unknown layer.*'conv99'"):
        Profiler(spec, layers=["conv99"]).update(x)
    with pytest.raises(ValueError, match="unknown grouping"):
        Profiler(spec, group_by=["colour"]).update(x)
    with pytest.raises(ValueError, match="unknown variant"):
        Profiler(spec, variants=["gradcam"]).update(x)
    with pytest.raises(ValueError, match="mask_scale"):
        Profiler(spec, mask_scale="row").update(x)
    prof = Profiler(spec, group_by=["phoneme"])
    with pytest.raises(ValueError, match="needs an alignment"):
        prof.update(torch.randn(128, 50))
    with pytest.raises(ValueError, match="no events"):
        Profiler(spec).acc_.means("input")


def test_target_and_correct_groupings(spec):
    prof = Profiler(spec, group_by=["grapheme", "target", "correct"], include_blank=True)
    prof.update(torch.randn(128, 200), transcript="abc")
    groups = set(prof.result()["group"].values)
    assert {"target:a", "target:b", "target:c"} <= groups
    assert groups & {"correct:yes", "correct:no"}


def test_split_half_reliability(spec):
    """Halves are disjoint: a profile made of one utterance repeated correlates perfectly
    with itself; unrelated random utterances correlate much less."""
    x, speaker, alignment = utterances(1)[0]
    same = run(spec, [(x, speaker, alignment)] * 2).result()
    r = same["conv2"].to_dataset()["split_half_r"]
    assert r.dims == ("group",)
    assert np.nanmin(r.values) > 0.999999
    diff = run(spec, utterances(2, seed=3)).result()
    r2 = diff["conv2"].to_dataset()["split_half_r"].values
    assert np.nanmax(r2) < 0.99
    one = run(spec, utterances(1)).result()  # the second half is empty: undefined
    assert np.isnan(one["conv2"].to_dataset()["split_half_r"].values).all()


def test_reference_classes_replace_the_models_argmax(spec):
    """The sanity check keeps a trained model's events: with ``classes`` given, events,
    class c and grapheme labels come from them, not from this model's argmax."""
    x, speaker, alignment = utterances(1)[0]
    n_out = spec.geometry.lengths(x.shape[1])[-1]
    classes = torch.zeros(n_out, dtype=torch.long)
    classes[::3] = 5  # every third frame is an event of class 5
    prof = Profiler(spec, group_by=["grapheme"])
    events = prof.update(x, classes=classes)
    assert events == len(range(0, n_out, 3))
    tree = prof.result()
    assert list(tree["group"].values) == [f"grapheme:{spec.labels[5]}"]
    with pytest.raises(ValueError, match="classes"):
        prof.update(x, classes=classes[:-1])


def test_auto_batch_events_on_the_cpu(spec):
    prof = Profiler(spec, batch_events="auto")
    assert prof.batch_events == "auto" and not hasattr(prof, "batch_events_")  # stored only
    prof.update(torch.randn(128, 40))
    assert prof.batch_events_ == 128
    assert Profiler(spec, batch_events=7).n_events_ == 0


def test_navai_alignment_and_mask_scale_are_parameters(spec):
    items = utterances(2)
    default = run(spec, items, layers=["input", "conv3"]).result()
    locked = run(
        spec, items, layers=["input", "conv3"], navai_align="activation_gradient",
        mask_scale="neuron",
    ).result()  # fmt: skip
    for tree, same in ((default, False), (locked, True)):
        ds = tree["conv3"].to_dataset()
        own = ds["mean_activation"] - ds["mean_activation_all"]
        assert np.allclose(ds["navai"], own, rtol=0, atol=1e-12) == same
    # the input is aligned on the gradient under both rules
    ds = default["input"].to_dataset()
    np.testing.assert_allclose(ds["navai"], ds["mean_activation"] - ds["mean_activation_all"])
    mask = locked["conv3"].to_dataset()["mask"].values
    assert np.allclose(mask.max(-1)[mask.max(-1) > 0], 1.0)  # every neuron's row peaks at 1
    assert not np.allclose(default["conv3"].to_dataset()["mask"].values.max(-1), 1.0)
    assert config_of(locked)["navai_align"] == "activation_gradient"


def test_only_the_sums_of_the_chosen_variants_are_kept(spec):
    prof = run(spec, utterances(1), layers=["conv2"], variants=["nap"])
    assert set(prof.halves_[0].sums_["conv2"]) == {"sorted@activation_gradient"}
    ds = prof.result()["conv2"].to_dataset()
    top = {"top_activation", "top_utterance", "top_time"}  # kept whatever the variants
    assert {"nap", "count", "split_half_r"} | top == set(ds.data_vars)
    assert ds.attrs["profiles"] == "nap"


def test_sensitivity_of_the_log_probability(spec):
    items = utterances(1)
    logit = run(spec, items, layers=["conv2"]).result()
    log_prob = run(spec, items, layers=["conv2"], sensitivity="log_prob").result()
    a, b = logit["conv2"].to_dataset(), log_prob["conv2"].to_dataset()
    np.testing.assert_array_equal(a["count"], b["count"])  # the same events ...
    assert a["group"].values.tolist() == b["group"].values.tolist()
    assert not np.allclose(a["mean_gradient"], b["mean_gradient"])  # ... other gradients
    assert config_of(log_prob)["sensitivity_from"] == "log_prob"
    with pytest.raises(ValueError, match="sensitivity"):
        Profiler(spec, sensitivity="prob").update(torch.randn(128, 40))
