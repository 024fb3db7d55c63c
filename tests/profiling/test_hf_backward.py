"""The two-phase backend of Hugging Face CTC models (hf_ctc) against plain autograd."""

import json

import pytest
import torch

import gradnap
from gradnap.profiling import hf_backward as H
from gradnap.profiling import sensitivity as S
from tests.profiling.plain_reference import assert_trees_close, assert_windows_equal

transformers = pytest.importorskip("transformers")

from tests.profiling.test_models_hf import (  # noqa: E402
    LABELS,
    build,
    plain_windows,
    utterances,  # noqa: F401 (the fixture)
)

CASES = {
    "wav2vec2": ("wav2vec2", {}),  # GroupNorm first conv, post-LN transformer
    # (16 conv channels: over 8, the plain float32 reference's own error against float64
    # reaches 2e-6 of max|G| at the input, the LayerNorms being that ill-conditioned)
    "wav2vec2_layer_stable": (
        "wav2vec2",
        dict(
            feat_extract_norm="layer",
            do_stable_layer_norm=True,
            conv_bias=True,
            conv_dim=(16,) * 7,
        ),
    ),
    "hubert": ("hubert", {}),
    "wavlm": ("wavlm", {}),  # relative position bias, gated
    "data2vec": ("data2vec", {}),  # LayerNorm conv layers, positional conv stack
}


def spec_of(case):
    family, overrides = CASES[case]
    model = build(family, **overrides)
    return model, gradnap.ModelSpec.from_huggingface(model, labels=LABELS)


def wave(n=9000, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, 1, n, generator=g)


@pytest.mark.parametrize("case", list(CASES))
def test_every_layer_equals_one_plain_backward_per_event(case):
    model, spec = spec_of(case)
    assert S.auto_backend(spec) == ("hf_ctc", None)
    x = wave()
    if case == "data2vec":
        # its random-init float32 gradients are themselves only good to ~1e-5 of max|G|
        # (plain float32 against float64): both sides in float64, where rounding is not
        # what is compared
        model.double()
        x = x.double()
    n_out = spec.forward_with_activations(x)[0].shape[-1]
    t = torch.tensor([0, 5, 5, n_out - 1])  # both edges, one frame twice (other class)
    c = torch.tensor([3, 0, 11, 7])
    got = H.hf_ctc(spec, x, t, c, spec.layer_names)
    assert_windows_equal(got, plain_windows(model, spec, x, t, c), spec.layer_names)


def test_log_prob_subsets_of_layers_and_a_tiny_memory_budget():
    model, spec = spec_of("wav2vec2")
    x = wave(7000)
    t, c = torch.tensor([1, 9, 17]), torch.tensor([2, 5, 0])
    layers = ["input", "conv3", "layer0", "logits"]
    _, acts = spec.forward_with_activations(x)
    full_shapes = {"input": (1, 7000), **{n: tuple(a.shape[1:]) for n, a in acts.items()}}
    want = S.reference(spec, x, t, c, layers, sensitivity="log_prob")
    got = H.hf_ctc(spec, x, t, c, layers, sensitivity="log_prob", max_memory=1)  # 1 event
    assert list(got) == layers
    for n in layers:
        scale = float(want[n].values.abs().max())
        assert float((got[n].values - want[n].values).abs().max()) <= 1e-6 * scale, n
    none = H.hf_ctc(spec, x, t[:0], c[:0], spec.layer_names)
    for n in spec.layer_names:
        assert none[n].values.shape == (0, *full_shapes[n]), n
    only_top = H.hf_ctc(spec, x, t, c, ["conv6", "layer1"])
    full = H.hf_ctc(spec, x, t, c, spec.layer_names)
    for n in ("conv6", "layer1"):
        torch.testing.assert_close(only_top[n].values, full[n].values, rtol=0, atol=0)
    assert {n: tuple(w.values.shape[1:]) for n, w in full.items()} == full_shapes


def test_the_cached_forward_follows_the_input_and_the_weights():
    model, spec = spec_of("hubert")
    t, c = torch.tensor([4]), torch.tensor([6])
    for x in (wave(seed=1), wave(seed=2)):  # same shape, new tensor: a new forward
        got = gradnap.sensitivities(spec, x, t, c)
        assert_windows_equal(got, plain_windows(model, spec, x, t, c), spec.layer_names)
    x = wave(seed=3)
    gradnap.sensitivities(spec, x, t, c)
    with torch.no_grad():
        model.hubert.feature_extractor.conv_layers[2].conv.weight.mul_(1.5)
    got = gradnap.sensitivities(spec, x, t, c)
    assert_windows_equal(got, plain_windows(model, spec, x, t, c), spec.layer_names)


def test_profiles_equal_the_generic_path(utterances):  # noqa: F811 (the fixture)
    """The Profiler picks hf_ctc by itself (here in batches of 5 events, one forward per
    utterance) and says so; the profiles are the generic path's."""
    _, spec = spec_of("wav2vec2")
    trees, configs = [], []
    for backend, batch in (("auto", 5), ("generic", 128)):
        prof = gradnap.Profiler(
            spec, group_by=["grapheme", "phoneme"], backend=backend, batch_events=batch
        )
        for i, (wav, sr, speaker, alignment) in enumerate(utterances):
            prof.update(
                spec.front_end(wav, sr), speaker, alignment, frames=range(1, 75, 3), index=i
            )
        trees.append(prof.result())
        configs.append(json.loads(trees[-1].attrs["config"]))
    assert [cfg["backend"] for cfg in configs] == ["hf_ctc", "generic"]
    assert configs[0]["backend_note"] is None and configs[0]["events"] > 20
    assert any(str(g).startswith("phoneme:") for g in trees[0]["group"].values)
    assert_trees_close(*trees)


def test_what_it_cannot_express_falls_back_to_the_generic_path_and_says_why():
    model = build("wav2vec2", add_adapter=True, num_adapter_layers=1, output_hidden_size=16)
    spec = gradnap.ModelSpec.from_huggingface(model, labels=LABELS)
    backend, note = S.auto_backend(spec)
    assert backend == "generic" and "adapter" in note
    prof = gradnap.Profiler(spec)
    config = prof.config()
    assert config["backend"] == "generic" and "adapter" in config["backend_note"]
    with pytest.raises(ValueError, match="hf_ctc.*adapter"):
        gradnap.Profiler(spec, backend="hf_ctc").config()

    class MyCTC(transformers.Wav2Vec2ForCTC):  # a family it is not tested on
        pass

    model = MyCTC(build("wav2vec2").config).eval()
    spec = gradnap.ModelSpec.from_huggingface(model, labels=LABELS)
    assert "MyCTC is not one of the families" in S.auto_backend(spec)[1]

    model = build("hubert")
    spec = gradnap.ModelSpec.from_huggingface(
        model, labels=LABELS, layers={"ff": "hubert.encoder.layers.0.feed_forward"}
    )
    assert "'ff'" in S.auto_backend(spec)[1]
    x = wave(6000)
    t, c = torch.tensor([3]), torch.tensor([2])
    assert_windows_equal(
        gradnap.sensitivities(spec, x, t, c),
        {n: w.values for n, w in S.reference(spec, x, t, c, spec.layer_names).items()},
        spec.layer_names,
    )
