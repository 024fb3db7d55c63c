"""ModelSpec for any model: layouts, logits, time, front ends, and the errors.

Issue 14's nine ways to get wrong profiles without an error, each now right or an error:
(1) sensitivities of log-probabilities, (2) events from a hidden layer, (3) (B, T, H) layers,
(4) (B, T, C) logits, (5) conv-geometry crops of unbounded layers (test_models_hf),
(6) the wrong front end, (7) every layer at the input hop, (8) output frames without their
receptive-field offset (test_models_hf), (9) in-place activations.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gradnap
from gradnap.profiling import LayoutError
from gradnap.profiling import sensitivity as S
from tests.profiling.plain_reference import assert_windows_equal, plain_gradients

LABELS = list("_abcd")


def x_of(spec, seconds=0.5):
    torch.manual_seed(1)
    return spec.front_end(0.1 * torch.randn(int(16000 * seconds)).numpy(), 16000)[None]


class LogSoftmaxModel(nn.Module):
    """(B, 6, T) -> log-probabilities (B, 5, T), the log-softmax a function in forward."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(6, 8, 3, padding=1)
        self.act = nn.Tanh()
        self.proj = nn.Conv1d(8, 5, 1)

    def forward(self, x):
        return F.log_softmax(self.proj(self.act(self.conv(x))), dim=1)


def test_1_sensitivities_are_of_the_logits_before_the_log_softmax():
    model = LogSoftmaxModel().eval()
    spec = gradnap.ModelSpec(model, layers=["act"], labels=LABELS, features="log-mel-6")
    assert "proj" in spec.description["sensitivity_from"]
    x = x_of(spec)
    t, c = torch.tensor([0, 9, 20]), torch.tensor([1, 4, 0])
    want, logits = plain_gradients(
        model.proj and nn.Sequential(model.conv, model.act, model.proj),
        x,
        {"act": (model.act, lambda o: o, 2)},
        lambda r: r[0],
        t,
        c,
    )
    assert_windows_equal(gradnap.sensitivities(spec, x, t, c), want, ["input", "act"])
    assert gradnap.Profiler(spec).config()["logits"].startswith("logit: the output of")


def test_2_events_come_from_the_model_output_not_the_last_listed_layer():
    model = LogSoftmaxModel().eval()
    spec = gradnap.ModelSpec(model, layers=["conv"], labels=LABELS, features="log-mel-6")
    x = x_of(spec)[0]
    pred = model(x[None])[0].argmax(0)
    prof = gradnap.Profiler(spec)
    assert prof.update(x) == int((pred != 0).sum())
    groups = set(map(str, prof.result()["group"].values))
    assert groups <= {f"grapheme:{s}" for s in LABELS[1:]}


class TimeMajor(nn.Module):
    """Layers in (B, T, H), logits (B, T, K)."""

    def __init__(self, k=5):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(6, 8, 3, padding=1)
        self.lin = nn.Linear(8, 8)
        self.head = nn.Linear(8, k)

    def forward(self, x):
        h = self.conv(x).transpose(1, 2)
        return self.head(torch.tanh(self.lin(h)))


def test_3_4_time_major_layers_and_logits():
    model = TimeMajor().eval()
    spec = gradnap.ModelSpec(model, layers=["lin", "head"], labels=LABELS, features="log-mel-6")
    assert spec.layouts["lin"].time_axis == 1 and spec.output_layout.time_axis == 1
    x = x_of(spec, 0.19)  # 20 frames
    logits, acts = spec.forward_with_activations(x)
    assert logits.shape == (1, 5, 20) and acts["lin"].shape == (1, 8, 20)
    t, c = torch.tensor([0, 7, 19]), torch.tensor([2, 0, 4])
    want, _ = plain_gradients(
        model,
        x,
        {"lin": (model.lin, lambda o: o, 1), "head": (model.head, lambda o: o, 1)},
        lambda r: r[0].T,
        t,
        c,
    )
    assert_windows_equal(gradnap.sensitivities(spec, x, t, c), want, ["input", "lin", "head"])
    assert gradnap.Profiler(spec, layers=["lin"]).update(x[0]) <= 20
    with pytest.raises(LayoutError, match="class axis has 5 classes .* labels has 4"):
        gradnap.ModelSpec(model, layers=["lin"], labels=LABELS[:4], features="log-mel-6")


def test_6_the_front_end_is_what_the_model_was_built_for():
    """gradnap.profiles feeds MFCCs to an MFCC model (a 128-bin log-mel would not fit)."""
    from gradnap.models.checkpoint import DEFAULT_CORPUS

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(13, 8, 5, padding=2), nn.ReLU(), nn.Conv1d(8, 5, 1)).eval()
    spec = gradnap.ModelSpec(model, layers=["1", "2"], labels=LABELS, features="mfcc")
    tree = gradnap.profiles(
        spec, DEFAULT_CORPUS / "test", limit=1, progress=False, layers=["input", "1"]
    )
    assert tree["input"]["neuron"].size == 13
    assert list(tree["input"]["mfcc"].values) == list(range(13))
    assert "mfcc" in tree.attrs["config"]


class Strided(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1 = nn.Conv1d(6, 8, 4, stride=2, padding=1)
        self.c2 = nn.Conv1d(8, 5, 4, stride=2, padding=1)

    def forward(self, x):
        return self.c2(torch.relu(self.c1(x)))


def test_7_each_layer_has_its_own_frame_rate():
    spec = gradnap.ModelSpec(Strided().eval(), ["c1", "c2"], LABELS, features="log-mel-6")
    assert spec.frame_seconds("input") == pytest.approx(0.01)
    assert spec.frame_seconds("c1") == pytest.approx(0.02)
    assert spec.frame_seconds("c2") == pytest.approx(0.04)
    assert "offset assumed 0" in spec.timing["c2"].source
    declared = gradnap.ModelSpec(
        Strided().eval(), ["c1", "c2"], LABELS, features="log-mel-6", timing={"c2": (40, 15)}
    )
    assert declared.output_timing.offset_seconds == pytest.approx(0.015)
    prof = gradnap.Profiler(spec, crop_width=3)
    prof.update(x_of(spec)[0])
    tree = prof.result()
    assert list(tree["c2"]["offset_ms"].values) == [-40.0, 0.0, 40.0]
    assert list(tree["c1"]["offset_ms"].values) == [-20.0, 0.0, 20.0]


def test_9_in_place_activations_do_not_overwrite_the_captured_output():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(6, 8, 3, padding=1), nn.ReLU(inplace=True), nn.Conv1d(8, 5, 3, padding=1)
    ).eval()
    spec = gradnap.ModelSpec(
        model, layers={"conv1": "0", "out": "2"}, labels=LABELS, features="log-mel-6"
    )
    x = x_of(spec)
    _, acts = spec.forward_with_activations(x)
    assert float(acts["conv1"].detach().min()) < 0  # the convolution's output, not the ReLU's
    plain = copy.deepcopy(model)
    plain[1].inplace = False
    t, c = torch.tensor([0, 10, 24]), torch.tensor([1, 2, 3])
    want, _ = plain_gradients(
        plain,
        x,
        {"conv1": (plain[0], lambda o: o, 2), "out": (plain[2], lambda o: o, 2)},
        lambda r: r[0],
        t,
        c,
    )
    got = S.generic(spec, x, t, c, ["input", "conv1", "out"])
    assert_windows_equal(got, want, ["input", "conv1", "out"])


class Odd(nn.Module):
    """Modules whose outputs cannot be read as (B, C, T) without help."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(6, 5, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.front = nn.Conv2d(1, 2, 3, padding=1)

    def forward(self, x):
        z = self.front(x[:, None]).flatten(1, 2)[:, :6]  # a Conv2d front end: (B, 2, 6, T)
        h = self.pair(self.conv(z))[1]
        self.pool(h)
        self.attention(h)
        return h


class Attention(nn.Module):
    def forward(self, h):
        return torch.einsum("bct,bcs->bts", h, h)


class Pair(nn.Module):
    def forward(self, h):
        return (None, h)


def odd_model():
    m = Odd()
    m.attention, m.pair = Attention(), Pair()
    return m.eval()


@pytest.mark.parametrize(
    "layers, message",
    [
        (["pool"], r"layer 'pool' \(pool\): the time axis cannot be identified"),
        (["attention"], r"layer 'attention' .*ambiguous.*time_axis"),
        (["pair"], r"layer 'pair': the output is a NoneType, not a tensor, after unpacking"),
        (["nowhere"], r"layer 'nowhere': no module 'nowhere' in the model"),
    ],
)
def test_validation_errors_name_the_layer_and_the_problem(layers, message):
    with pytest.raises(LayoutError, match=message):
        gradnap.ModelSpec(odd_model(), layers=layers, labels=LABELS, features="log-mel-6")


def test_declared_items_and_axes_and_4d_outputs():
    spec = gradnap.ModelSpec(
        odd_model(),
        layers={
            "front": "front",
            "pair": gradnap.Layer("pair", item=1),
            "attention": gradnap.Layer("attention", time_axis=1),
        },
        labels=LABELS,
        features="log-mel-6",
    )
    x = x_of(spec)
    _, acts = spec.forward_with_activations(x)
    assert acts["front"].shape == (1, 2 * 6, x.shape[-1])  # (channel x bin, time)
    assert acts["pair"].shape == (1, 5, x.shape[-1])
    coords = spec.neuron_coords["front"]
    assert list(coords["channel"][0][:7]) == [0] * 6 + [1]
    assert list(coords["bin"][0][:7]) == [0, 1, 2, 3, 4, 5, 0]
    t, c = torch.tensor([3, 30]), torch.tensor([1, 2])
    model = spec.model
    want, _ = plain_gradients(
        model,
        x,
        {"front": (model.front, lambda o: o, 3), "pair": (model.pair, lambda o: o[1], 2)},
        lambda r: r[0],
        t,
        c,
    )
    got = gradnap.sensitivities(spec, x, t, c, ["input", "front", "pair"])
    assert_windows_equal(got, want, ["input", "front", "pair"])
    prof = gradnap.Profiler(spec, layers=["front"])
    prof.update(x[0])
    assert list(prof.result()["front"]["channel"].values[:7]) == [0] * 6 + [1]


def test_hooks_are_removed_also_on_error():
    model = TimeMajor().eval()
    spec = gradnap.ModelSpec(model, layers=["lin", "head"], labels=LABELS, features="log-mel-6")
    with pytest.raises(RuntimeError):
        spec.forward_with_activations(torch.randn(1, 7, 30))
    assert not model.lin._forward_hooks and not model.head._forward_hooks


def test_1_torchaudio_logits_are_found_before_its_final_relu_without_from_sequential():
    from tests.profiling.test_stack_models import TorchaudioWav2Letter

    torch.manual_seed(0)
    model = TorchaudioWav2Letter(5, "mfcc", 13, w=8, wide=8).eval()
    spec = gradnap.ModelSpec(model, ["acoustic_model.1"], LABELS, features="log-mel-13")
    assert spec.description["sensitivity_from"].startswith("logit: the output of acoustic_model.20")
    assert "ReLU after the class layer is skipped" in spec.description["final_activation"]
