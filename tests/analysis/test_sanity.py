"""Cascading model randomization: the table's layout and what it must show."""

import numpy as np
import pytest
import torch

from gradnap.analysis import cascading_randomization
from gradnap.analysis.sanity import randomized
from gradnap.models import Wav2Letter
from gradnap.profiling import ModelSpec


@pytest.fixture(scope="module")
def spec():
    torch.manual_seed(0)
    model = Wav2Letter.from_preset("tiny").eval()
    with torch.no_grad():  # sharper logits: a random model then predicts varied classes
        top = dict(model.layers())["conv11"].conv.conv
        top.weight.mul_(50)
        top.bias.zero_()
    return ModelSpec.from_wav2letter(model)


def test_randomized_changes_only_the_top_layers(spec):
    new = randomized(spec, "conv9")
    for old, fresh in zip(spec.stack.layers, new.stack.layers):
        same = torch.equal(old.conv.weight, fresh.conv.weight)
        assert same == (old.name not in ("conv9", "conv10", "conv11")), old.name
    with pytest.raises(KeyError, match="nope"):
        randomized(spec, "nope")


def test_table_layout_and_correlations(spec):
    g = torch.Generator().manual_seed(0)

    class Utt:
        def __init__(self, i):
            self.speaker, self.text, self.id = "s", "", str(i)
            self.wav = torch.randn(16000, generator=g).numpy() * 0.1

        def load(self):
            return self.wav, 16000

    data = [Utt(i) for i in range(2)]
    table = cascading_randomization(
        spec,
        data,
        layers=["input", "conv3", "conv8"],
        levels=["conv11", "conv8", "conv1"],
        progress=False,
    )
    assert table["spearman_gradnap"].dims == ("randomized_down_to", "layer")
    assert set(table.data_vars) == {
        "spearman_gradnap",
        "spearman_abs_gradnap",
        "spearman_navai",
        "spearman_abs_navai",
    }
    r = table["spearman_gradnap"]
    # a layer whose own weights are random no longer matches the trained profile
    assert abs(float(r.sel(randomized_down_to="conv8", layer="conv8"))) < 0.3
    assert abs(float(r.sel(randomized_down_to="conv1", layer="conv3"))) < 0.3
    # randomizing only the top leaves a bottom layer's profile closer to the original
    top_only = float(r.sel(randomized_down_to="conv11", layer="conv3"))
    all_down = float(r.sel(randomized_down_to="conv1", layer="conv3"))
    assert top_only > all_down + 0.1
    assert np.isfinite(table["spearman_abs_gradnap"].values).all()


def test_the_variants_compared_are_a_parameter(spec):
    class Utt:
        speaker, text, id = "s", "", "0"

        def load(self):
            return torch.randn(16000, generator=torch.Generator().manual_seed(1)).numpy(), 16000

    table = cascading_randomization(
        spec, [Utt()], layers=["conv2"], levels=["conv11"], progress=False,
        variants=["saliency"],
    )  # fmt: skip
    assert set(table.data_vars) == {"spearman_saliency", "spearman_abs_saliency"}


# --- a Hugging Face CTC model (a generic ModelSpec) -------------------------------------


def test_a_generic_spec_randomizes_its_layers_top_down():
    pytest.importorskip("transformers")
    from tests.profiling.test_models_hf import LABELS, build

    spec = ModelSpec.from_huggingface(build("wav2vec2"), labels=LABELS)
    new = randomized(spec, "layer1")
    assert new.model is not spec.model and new.layers["layer1"] is new.model.get_submodule(
        spec.taps["layer1"].path
    )
    for name, module in spec.layers.items():
        fresh = new.layers[name]
        same = all(torch.equal(a, b) for a, b in zip(module.parameters(), fresh.parameters()))
        assert same == (name not in ("layer1", "logits")), name
    g = torch.Generator().manual_seed(0)

    class Utt:
        def __init__(self, i):
            self.speaker, self.text, self.id = f"s{i}", "", str(i)
            self.wav = torch.randn(6000, generator=g).numpy() * 0.1

        def load(self):
            return self.wav, 16000

    table = cascading_randomization(
        spec, [Utt(0), Utt(1)], layers=["conv0", "layer1"], levels=["logits", "conv0"],
        group_by=["speaker"], progress=False,
    )  # fmt: skip
    r = table["spearman_gradnap"]
    assert list(r["randomized_down_to"].values) == ["logits", "conv0"]
    # everything random: no layer keeps its profile
    assert (np.abs(r.sel(randomized_down_to="conv0").values) < 0.5).all()
    assert table.attrs["event_kind"] == "frame"


# --- Whisper: token events (a tiny random configuration) --------------------------------


@pytest.fixture
def whisper(monkeypatch):
    """A tiny random Whisper, its options, and utterances whose features are the test's
    own (the profiler's front end replaced: the tiny model has 20 mels, 128 frames)."""
    pytest.importorskip("transformers")
    from gradnap.profiling.token_profile import TokenProfiler
    from tests.profiling.test_tokens import N_FRAMES, PROMPT, features, tiny_model
    from tests.profiling.test_whisper_profile import Tok

    class Front:
        def __call__(self, wav, sr):
            return features(int(wav[0])), N_FRAMES

    class Utt:
        def __init__(self, i):
            self.id, self.speaker, self.text, self.i = str(i), "s", "", i

        def load(self):
            return np.full(1600, float(self.i), dtype=np.float32), 16000

    monkeypatch.setattr(TokenProfiler, "front_end", Front())
    options = dict(prompt=PROMPT, eot=-1, special=10**6, max_new_tokens=6, tokenizer=Tok())
    return tiny_model(), options, [Utt(1), Utt(2)]


def test_whisper_levels_randomize_the_decoder_then_the_encoder_top_down():
    pytest.importorskip("transformers")
    from gradnap.analysis.sanity import randomized_tokens, token_levels
    from tests.profiling.test_tokens import tiny_model

    model = tiny_model()
    levels = token_levels(model)
    assert levels == ["decoder", "encoder.layers.1", "encoder.layers.0", "conv2", "conv1"]
    new = randomized_tokens(model, "encoder.layers.1")
    changed = {
        name
        for (name, a), (_, b) in zip(model.named_parameters(), new.named_parameters())
        if not torch.equal(a, b)
    }
    assert any(n.startswith("model.decoder.layers.1") for n in changed)
    assert "model.decoder.embed_tokens.weight" in changed  # = the tied output projection
    assert "model.encoder.layer_norm.weight" not in changed  # reset to ones: it was ones
    assert any(n.startswith("model.encoder.layers.1.") for n in changed)
    assert not any(n.startswith(("model.encoder.layers.0.", "model.encoder.conv")) for n in changed)
    assert new.proj_out.weight is new.model.decoder.embed_tokens.weight
    with pytest.raises(KeyError, match="unknown level"):
        randomized_tokens(model, "conv3")


def test_whisper_sanity_keeps_the_trained_tokens(whisper, monkeypatch):
    """Every randomized copy is teacher-forced on the trained model's own greedy transcript
    (a randomized decoder would decode other tokens); a copy left as it was gives
    correlations of 1; randomizing everything leaves no profile in place."""
    from gradnap.analysis import sanity
    from gradnap.decode.whisper import greedy_tokens
    from gradnap.profiling.token_profile import TokenProfiler
    from tests.profiling.test_tokens import PROMPT, features

    model, options, data = whisper
    trained = [greedy_tokens(model, features(i), 6, PROMPT, eot=-1) for i in (1, 2)]
    seen = []
    update = TokenProfiler.update

    def spy(self, x, *args, tokens=None, **kwargs):
        seen.append((self.model is model, list(tokens)))
        return update(self, x, *args, tokens=tokens, **kwargs)

    monkeypatch.setattr(TokenProfiler, "update", spy)
    table = cascading_randomization(
        model, data, levels=["decoder", "conv1"], progress=False, token_options=options
    )
    assert [t for _, t in seen] == trained * 3
    assert [m for m, _ in seen] == [True, True] + [False] * 4
    assert table.attrs["event_kind"] == "token" and table.attrs["group_by"] == "token"
    assert table.attrs["events"] == sum(len(t) for t in trained)
    assert list(table["layer"].values) == ["input", "conv1", "conv2", "encoder.layers.0",
                                           "encoder.layers.1"]  # fmt: skip
    r = table["spearman_gradnap"]
    assert (np.abs(r.sel(randomized_down_to="conv1").values) < 0.5).all()
    assert np.isfinite(table["spearman_abs_gradnap"].values).all()

    # no randomization at all: every correlation is 1
    monkeypatch.setattr(sanity, "randomized_tokens", lambda m, level, seed: m)
    same = cascading_randomization(
        model, data, levels=["decoder"], progress=False, token_options=options,
        variants=["gradnap"],
    )  # fmt: skip
    np.testing.assert_allclose(same["spearman_gradnap"].values, 1.0)
