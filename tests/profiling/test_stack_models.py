"""from_sequential on torchaudio's Wav2Letter as built, eval BatchNorm1d and grouped convs:
the fast exact path against plain per-event autograd."""

import copy

import pytest
import torch
from torch import nn

import gradnap
from gradnap.corpus.textgrid import find_alignment
from gradnap.data import read_corpus
from gradnap.models.checkpoint import DEFAULT_CORPUS
from gradnap.profiling import sensitivity as S
from tests.profiling.plain_reference import assert_trees_close, plain_gradients


class TorchaudioWav2Letter(nn.Module):
    """A copy of the structure of ``torchaudio.models.Wav2Letter`` (torchaudio, BSD-2-Clause;
    torchaudio cannot be imported next to torch 2.13 here), with its channel counts
    (250, 2000) as parameters so that tests stay fast. Same modules, kernels, strides,
    paddings, in-place ReLUs, nesting and functional log_softmax as the original."""

    def __init__(self, num_classes=40, input_type="waveform", num_features=1, w=250, wide=2000):
        super().__init__()
        acoustic_num_features = w if input_type == "waveform" else num_features
        convs = [nn.Conv1d(acoustic_num_features, w, kernel_size=48, stride=2, padding=23)]
        convs += [nn.Conv1d(w, w, kernel_size=7, stride=1, padding=3) for _ in range(7)]
        convs += [
            nn.Conv1d(w, wide, kernel_size=32, stride=1, padding=16),
            nn.Conv1d(wide, wide, kernel_size=1, stride=1, padding=0),
            nn.Conv1d(wide, num_classes, kernel_size=1, stride=1, padding=0),
        ]
        acoustic_model = nn.Sequential(*[m for c in convs for m in (c, nn.ReLU(inplace=True))])
        if input_type == "waveform":
            waveform_model = nn.Sequential(
                nn.Conv1d(num_features, w, kernel_size=250, stride=160, padding=45),
                nn.ReLU(inplace=True),
            )
            self.acoustic_model = nn.Sequential(waveform_model, acoustic_model)
        if input_type in ["power_spectrum", "mfcc"]:
            self.acoustic_model = acoustic_model

    def forward(self, x):
        x = self.acoustic_model(x)
        x = nn.functional.log_softmax(x, dim=1)
        return x


def not_in_place(model):
    plain = copy.deepcopy(model)
    for m in plain.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    return plain


def assert_fast_equals_plain(spec, plain, x, t, c, rel=1e-6):
    """gradnap's fast windows against the plain full-utterance gradients: equal inside the
    window, and the plain gradient is zero outside it (the support is right)."""
    taps = {}
    for layer in spec.stack.layers:
        module = plain.get_submodule(layer.path)
        taps[layer.name] = (module, lambda o: o, 2)
    top = spec.stack.layers[-1]
    store = {}
    h = plain.get_submodule(top.conv_module_path).register_forward_hook(
        lambda _m, _i, o: store.__setitem__("z", o)
    )
    try:
        want, _ = plain_gradients(plain, x, taps, lambda r: store["z"][0], t, c)
    finally:
        h.remove()
    got = S.fast(spec, x, t, c, spec.layer_names)
    for n in spec.layer_names:
        g, full = got[n], want[n].detach()
        idx = g.start[:, None] + torch.arange(g.values.shape[-1])
        valid = (idx >= 0) & (idx < full.shape[-1])
        picked = (
            torch.gather(
                full, 2, idx.clamp(0, full.shape[-1] - 1)[:, None].expand(-1, full.shape[1], -1)
            )
            * valid[:, None]
        )
        scale = float(full.abs().max())
        assert scale > 0, n
        assert float((g.values - picked).abs().max()) <= rel * scale, n
        assert float(picked.abs().sum()) == pytest.approx(float(full.abs().sum()), rel=1e-5), n


@pytest.mark.parametrize("input_type", ["mfcc", "waveform"])
def test_torchaudio_wav2letter_as_built(input_type):
    torch.manual_seed(0)
    n_feat = 13 if input_type == "mfcc" else 1
    model = TorchaudioWav2Letter(6, input_type, n_feat, w=12, wide=24).eval()
    labels = list("_ abcd")
    spec = gradnap.ModelSpec.from_sequential(model, labels=labels)
    n_convs = 11 if input_type == "mfcc" else 12
    assert spec.layer_names == ["input"] + [f"conv{i}" for i in range(1, n_convs + 1)]
    assert "ReLU after the class convolution" in spec.description["final_activation"]
    assert spec.front_end.name == ("waveform" if input_type == "waveform" else "log-mel")
    x = torch.randn(1, n_feat, 101 if input_type == "mfcc" else 16000)
    logits, _ = spec.forward_with_activations(x)
    t_out = logits.shape[-1]
    assert spec.geometry.lengths(x.shape[-1])[-1] == t_out  # the kernel-32 conv adds a frame
    # the logits are the class convolution's output, before torchaudio's final ReLU
    torch.testing.assert_close(torch.log_softmax(logits.relu(), 1), model(x))
    t = torch.tensor([0, 1, t_out // 2, t_out - 1])
    c = torch.tensor([1, 2, 3, 5])
    assert_fast_equals_plain(spec, not_in_place(model), x, t, c)


def test_torchaudio_wav2letter_profiles_with_phonemes(monkeypatch):
    """fast against the plain gradients through the whole profile, phoneme grouping from
    the bundled TextGrids (MFCC input, as the model was built)."""
    torch.manual_seed(0)
    model = TorchaudioWav2Letter(6, "mfcc", 13, w=12, wide=24).eval()
    spec = gradnap.ModelSpec.from_sequential(model, labels=list("_ abcd"), features="mfcc")
    plain = not_in_place(model)
    taps = {
        layer.name: (plain.get_submodule(layer.path), lambda o: o, 2) for layer in spec.stack.layers
    }
    top_conv = plain.get_submodule(spec.stack.layers[-1].conv_module_path)

    def plain_backend(spec_, x_, t_, c_, layers, **_):
        store = {}
        h = top_conv.register_forward_hook(lambda _m, _i, o: store.__setitem__("z", o))
        try:
            g, _ = plain_gradients(plain, x_, taps, lambda r: store["z"][0], t_, c_)
        finally:
            h.remove()
        full = {n: S.Window(g[n], torch.zeros(len(t_), dtype=torch.long)) for n in layers}
        return S._crop_full(spec_, {n: w.values for n, w in full.items()}, t_, x_.shape[-1])

    corpus = read_corpus(DEFAULT_CORPUS / "test")
    utt = list(corpus)[0]
    wav, sr = utt.load()
    alignment = find_alignment(utt, None, corpus.root)
    x = spec.front_end(wav, sr)
    trees = []
    for method in ("fast", "reference"):
        if method == "reference":
            monkeypatch.setattr(S, "reference", plain_backend)
        prof = gradnap.Profiler(spec, group_by=["grapheme", "phoneme"], backend=method)
        prof.update(x, None, alignment, frames=range(0, x.shape[-1] // 2, 9))
        trees.append(prof.result())
    assert any(str(g).startswith("phoneme:") for g in trees[0]["group"].values)
    assert_trees_close(*trees)


def test_batchnorm_is_folded_and_grouped_convs_keep_the_fast_path():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(8, 12, 5, padding=2),
        nn.BatchNorm1d(12),
        nn.ReLU(),
        nn.Sequential(nn.Conv1d(12, 12, 7, padding=3, groups=12), nn.GELU()),  # depthwise
        nn.Conv1d(12, 12, 3, stride=2, padding=1, groups=3),
        nn.BatchNorm1d(12),
        nn.Tanh(),
        nn.Conv1d(12, 5, 1),
    )
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
            m.weight.data.normal_()
            m.bias.data.normal_()
    model.eval()
    spec = gradnap.ModelSpec.from_sequential(model, labels=list("_abcd"), features="log-mel-8")
    assert spec.stack is not None and len(spec.stack.layers) == 4
    assert any("BatchNorm1d folded" in v for v in spec.description.values())
    x = torch.randn(1, 8, 60)
    acts, _ = spec.stack.forward_record(x)
    torch.testing.assert_close(acts[-1], model(x)[0], atol=1e-5, rtol=1e-5)
    t_out = acts[-1].shape[-1]
    assert_fast_equals_plain(
        spec, model, x, torch.tensor([0, 5, t_out - 1]), torch.tensor([1, 2, 3]), rel=2e-6
    )
    with pytest.raises(ValueError, match="eval mode"):
        gradnap.ModelSpec.from_sequential(model.train(), labels=list("_abcd"))
