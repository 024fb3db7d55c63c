"""Hugging Face CTC models (small random configs): exact sensitivities and profiles, time."""

import numpy as np
import pytest
import torch

import gradnap
from gradnap.corpus.textgrid import Alignment, find_alignment
from gradnap.data import read_corpus
from gradnap.models.checkpoint import DEFAULT_CORPUS
from gradnap.profiling import sensitivity as S
from tests.profiling.plain_reference import (
    assert_trees_close,
    assert_windows_equal,
    plain_gradients,
)

transformers = pytest.importorskip("transformers")

LABELS = ["<pad>", "|"] + list("abcdefghij")
SMALL = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=24,
    conv_dim=(8,) * 7,
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    vocab_size=len(LABELS),
    pad_token_id=0,
)
FAMILIES = {
    "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2ForCTC"),
    "hubert": ("HubertConfig", "HubertForCTC"),
    "wavlm": ("WavLMConfig", "WavLMForCTC"),
    "data2vec": ("Data2VecAudioConfig", "Data2VecAudioForCTC"),
}


def build(family, **overrides):
    torch.manual_seed(0)
    config_cls, model_cls = (getattr(transformers, n) for n in FAMILIES[family])
    return model_cls(config_cls(**{**SMALL, **overrides})).eval()


def first(out):
    return out[0] if isinstance(out, tuple) else out


def plain_taps(model, spec):
    """The test's own taps: conv layers (B, C, T); projection, layers, head (B, T, H)."""
    taps = {}
    for name, tap in spec.taps.items():
        module = model.get_submodule(tap.path)
        taps[name] = (module, first, 2 if name.startswith("conv") else 1)
    return taps


def plain_windows(model, spec, x, t, c):
    grads, _ = plain_gradients(
        model, x[:, 0], plain_taps(model, spec), lambda r: r.logits[0].T, t, c
    )
    return grads


@pytest.fixture(scope="module")
def utterances():
    corpus = read_corpus(DEFAULT_CORPUS / "test")
    items = []
    for utt in list(corpus)[:2]:
        wav, sr = utt.load()
        alignment = find_alignment(utt, None, corpus.root)
        items.append((wav[: int(1.5 * sr)], sr, utt.speaker, alignment))  # 1.5 s: fast
    return items


@pytest.mark.parametrize("family", list(FAMILIES))
def test_sensitivities_and_profiles_equal_the_plain_reference(family, utterances, monkeypatch):
    model = build(family)
    spec = gradnap.ModelSpec.from_huggingface(model, labels=LABELS)
    assert spec.blank == 0 and spec.labels[1] == " "
    assert list(spec.layers) == [f"conv{i}" for i in range(7)] + [
        "projection",
        "layer0",
        "layer1",
        "logits",
    ]
    wav, sr, speaker, alignment = utterances[0]
    x = spec.front_end(wav, sr)[None]
    assert x.shape[:2] == (1, 1)
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3  # do_normalize
    t = torch.tensor([0, 7, 30])
    c = torch.tensor([3, 0, 11])
    if family == "data2vec":
        # its random-init float32 gradients are only good to ~1e-5 of max|G| (plain float32
        # against float64), so float32 paths with other rounding orders differ by more than
        # 1e-6: compared in float64, where the math, not the rounding, is what is compared
        model.double()
        got = gradnap.sensitivities(spec, x.double(), t, c)
        assert_windows_equal(got, plain_windows(model, spec, x.double(), t, c), spec.layer_names)
        model.float()
    got = gradnap.sensitivities(spec, x, t, c)
    if family != "data2vec":
        assert_windows_equal(got, plain_windows(model, spec, x, t, c), spec.layer_names)

    # profiles: gradnap's generic path against the same with the test's plain gradients
    def plain_backend(spec_, x_, t_, c_, layers, **_):
        g = plain_windows(model, spec_, x_, t_, c_)
        return {n: S.Window(g[n], torch.zeros(len(t_), dtype=torch.long)) for n in layers}

    trees = []
    for method in ("generic", "reference"):
        if method == "reference":
            monkeypatch.setattr(S, "reference", plain_backend)
        prof = gradnap.Profiler(spec, group_by=["grapheme", "phoneme"], backend=method)
        for i, (wav, sr, speaker, alignment) in enumerate(utterances):
            x = spec.front_end(wav, sr)
            n_out = spec.forward_with_activations(x[None])[0].shape[-1]
            prof.update(x, speaker, alignment, frames=range(0, n_out, 12), index=i)
        trees.append(prof.result())
    assert any(str(g).startswith("phoneme:") for g in trees[0]["group"].values)
    assert_trees_close(*trees)


def test_output_frames_get_the_phone_their_receptive_field_centre_falls_in():
    """wav2vec2's base conv encoder: output frame t covers samples [320 t, 320 t + 400), its
    time is their centre (320 t + 199.5) / 16 kHz (not 320 t / 16 kHz)."""
    model = build("wav2vec2")
    spec = gradnap.ModelSpec.from_huggingface(model, labels=LABELS)
    timing = spec.output_timing
    assert timing.frame_seconds == pytest.approx(0.02)
    assert timing.offset_seconds == pytest.approx(199.5 / 16000)
    rng = np.random.default_rng(0)
    n_samples = 16000
    edges = np.concatenate([[0.0], np.sort(rng.uniform(0, 1, 60)), [1.0]])
    phones = [(f"P{i % 7}", float(a), float(b)) for i, (a, b) in enumerate(zip(edges, edges[1:]))]
    x = torch.randn(1, n_samples).numpy()
    n_out = spec.forward_with_activations(spec.front_end(x, 16000)[None])[0].shape[-1]
    want = {}
    for t in range(n_out):
        centre = (320 * t + 199.5) / 16000
        label = next(p for p, a, b in phones if a <= centre < b)
        want[f"phoneme:{label}"] = want.get(f"phoneme:{label}", 0) + 1
    prof = gradnap.Profiler(spec, layers=["logits"], group_by=["phoneme"], include_blank=True)
    prof.update(spec.front_end(x, 16000), alignment=Alignment([], phones, 1.0))
    tree = prof.result()
    got = dict(zip(map(str, tree["group"].values), tree["count"].values.tolist()))
    assert got == want


def test_crops_are_time_windows_in_ms_not_conv_geometry():
    """Every layer of a transformer CTC model has unbounded support: the gradients are kept
    over the whole utterance and crops are 500 ms wide by default."""
    spec = gradnap.ModelSpec.from_huggingface(build("wav2vec2"), labels=LABELS)
    assert spec.crop_frames("input") == 8000
    assert spec.crop_frames("conv0") == 1600
    assert spec.crop_frames("layer1") == 25
    assert gradnap.Profiler(spec).config()["crop_width"]["conv6"] == 25
    x = torch.randn(1, 1, 8000)
    g = gradnap.sensitivities(spec, x, torch.tensor([12]), torch.tensor([2]), ["conv0"])
    assert g["conv0"].values.shape[-1] == 1599
    # the gradient reaches far beyond conv0's receptive-field cone (GroupNorm over time)
    assert float(g["conv0"].values[0, :, :200].abs().sum()) > 0


def test_labels_from_a_vocabulary_and_errors():
    model = build("hubert")
    vocab = {s if s != " " else "|": i for i, s in enumerate(LABELS)}
    vocab["|"] = 1
    spec = gradnap.ModelSpec.from_huggingface(model, labels=vocab)
    assert spec.labels == ["<pad>", " "] + list("abcdefghij")
    with pytest.raises(ValueError, match="has no vocabulary: pass labels="):
        gradnap.ModelSpec.from_huggingface(model)
    with pytest.raises(ValueError, match="11 labels for a model with 12 classes"):
        gradnap.ModelSpec.from_huggingface(model, labels=LABELS[:-1])


def test_a_saved_directory_loads_with_safetensors_only(tmp_path):
    import json

    model = build("wav2vec2")
    model.save_pretrained(tmp_path / "m")
    vocab = {s if s != " " else "|": i for i, s in enumerate(LABELS)}
    (tmp_path / "m" / "vocab.json").write_text(json.dumps(vocab))
    spec = gradnap.ModelSpec.from_huggingface(tmp_path / "m")
    assert spec.labels[1] == " " and spec.description["source"].endswith("m")
    x = torch.randn(1, 1, 4000)
    torch.testing.assert_close(
        spec.forward_with_activations(x)[0], model(x[:, 0]).logits.transpose(1, 2)
    )
    for f in (tmp_path / "m").glob("*.safetensors"):
        f.rename(f.with_suffix(".bin"))
    with pytest.raises(ValueError, match="only safetensors"):
        gradnap.ModelSpec.from_huggingface(tmp_path / "m")


def test_the_command_line_profiles_a_saved_directory(tmp_path):
    import json

    from typer.testing import CliRunner

    from gradnap.cli.main import app

    model = build("wav2vec2")
    model.save_pretrained(tmp_path / "m")
    vocab = {s if s != " " else "|": i for i, s in enumerate(LABELS)}
    (tmp_path / "m" / "vocab.json").write_text(json.dumps(vocab))
    out = tmp_path / "p.nc"
    args = ["profile", "--model", str(tmp_path / "m"), "--out", str(out), "--limit", "1"]
    r = CliRunner().invoke(app, args + ["--layers", "layer1", "--group-by", "phoneme"])
    assert r.exit_code == 0, r.output
    tree = gradnap.load_profiles(out)
    assert tree["layer1"].attrs["frame_ms"] == pytest.approx(20.0)
    assert any(str(g).startswith("phoneme:") for g in tree["group"].values)
