"""The fast and generic paths against the per-event autograd reference."""

import copy
import functools

import pytest
import torch
from torch import nn

from gradnap.models import Wav2Letter
from gradnap.profiling import ModelSpec
from gradnap.profiling import sensitivity as S


def events_at_edges(t_out: int) -> torch.Tensor:
    return torch.tensor([0, 1, t_out // 2, t_out - 2, t_out - 1])


def assert_same(spec, x, t, c, other, reference=S.reference):
    layers = spec.layer_names
    ref = reference(spec, x, t, c, layers)
    got = other(spec, x, t, c, layers)
    for name in layers:
        assert torch.equal(got[name].start, ref[name].start), name
        assert got[name].values.shape == ref[name].values.shape, name
        scale = ref[name].values.abs().max()
        assert scale > 0, name
        diff = (got[name].values - ref[name].values).abs().max()
        assert diff <= 1e-6 * scale, f"{name}: {diff / scale:.2e} of max|G|"


@pytest.mark.parametrize("preset", ["small", "paper"])
@pytest.mark.parametrize("t_in", [161, 162])
@pytest.mark.parametrize("fft", [None, False])
def test_fast_equals_reference_on_presets(preset, t_in, fft):
    """``fft=None``: spectral products where they pay (conv1..conv8 here); False: direct.

    The reference runs in float64 (the same weights): on the paper preset a float32
    reference's own rounding is as large as the fast path's (their difference reached
    1.07e-6 of max|G| with one thread), so it measures the fast path's error alone."""
    torch.manual_seed(0)
    model = Wav2Letter.from_preset(preset).eval()
    spec = ModelSpec.from_wav2letter(model)
    exact = ModelSpec.from_wav2letter(copy.deepcopy(model).double())

    def reference64(_spec, x, t, c, layers):
        got = S.reference(exact, x.double(), t, c, layers)
        return {k: S.Window(w.values.float(), w.start) for k, w in got.items()}

    x = torch.randn(1, 128, t_in)
    t = events_at_edges((t_in + 1) // 2)
    c = torch.randint(0, 29, (len(t),))
    assert_same(spec, x, t, c, functools.partial(S.fast, fft=fft), reference=reference64)


def test_the_fft_rule_on_wav2letter():
    spec = ModelSpec.from_wav2letter(Wav2Letter.from_preset("small"))
    layers = {layer.name: layer for layer in spec.stack.layers}
    width = {name: spec.geometry.support_width(name) for name in spec.layer_names}
    # a layer's transposed convolution takes the gradient window of its own output
    chosen = [n for n in layers if S.use_fft(layers[n], width[n])]
    assert chosen == [f"conv{i}" for i in range(1, 9)], chosen
    # the spectral product reproduces conv_transpose1d with stride 2 and a 48-tap kernel
    g = torch.randn(3, 64, width["conv1"])
    want = torch.nn.functional.conv_transpose1d(g, layers["conv1"].conv.weight, stride=2)
    got = S.conv_transpose_fft(g, layers["conv1"])
    assert got.shape == want.shape
    assert (got - want).abs().max() <= 1e-5 * want.abs().max()


def custom_model():
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv1d(10, 12, 5, padding=2),
        nn.Tanh(),
        nn.Conv1d(12, 12, 4, stride=2, padding=1),
        nn.LeakyReLU(0.1),
        nn.Conv1d(12, 8, 3, dilation=2, padding=2),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Conv1d(8, 6, 1),
    ).eval()


@pytest.mark.parametrize("t_in", [37, 38])
@pytest.mark.parametrize("fft", [None, True])
def test_fast_equals_reference_on_another_layout(t_in, fft):
    """Other kernels, a stride in a middle layer, a dilation, other activations; ``fft=True``
    takes every layer through the spectral product (stride and dilation included)."""
    spec = ModelSpec.from_sequential(custom_model(), labels=list("_abcde"))
    assert spec.layer_names == ["input", "conv1", "conv2", "conv3", "conv4"]
    x = torch.randn(1, 10, t_in)
    t_out = spec.geometry.lengths(t_in)[-1]
    assert spec.model(x).shape[-1] == t_out
    fast = functools.partial(S.fast, fft=fft)
    assert_same(spec, x, events_at_edges(t_out), torch.tensor([1, 2, 3, 4, 5]), fast)


def test_kernel_spectra_follow_weight_updates():
    """Cached spectra are rebuilt when the weights change in place (the sanity check
    re-initializes layers)."""
    spec = ModelSpec.from_sequential(custom_model(), labels=list("_abcde"))
    x = torch.randn(1, 10, 40)
    t = torch.tensor([3, 9])
    c = torch.tensor([1, 2])
    S.fast(spec, x, t, c, spec.layer_names, fft=True)
    with torch.no_grad():
        spec.stack.layers[1].conv.weight.mul_(-2.0)
    assert_same(spec, x, t, c, functools.partial(S.fast, fft=True))


def test_generic_equals_reference():
    spec = ModelSpec.from_sequential(custom_model(), labels=list("_abcde"))
    x = torch.randn(1, 10, 40)
    t_out = spec.geometry.lengths(40)[-1]
    assert_same(spec, x, events_at_edges(t_out), torch.tensor([5, 4, 3, 2, 1]), S.generic)


def test_stack_forward_matches_the_model():
    model = Wav2Letter.from_preset("tiny").eval()
    spec = ModelSpec.from_wav2letter(model)
    x = torch.randn(1, 128, 99)
    acts, derivs = spec.stack.forward_record(x)
    torch.testing.assert_close(acts[-1], model(x)[0])
    assert derivs[-1] is None and set(derivs[1].unique().tolist()) <= {0.0, 1.0}


def test_hooks_are_removed_also_on_error():
    model = Wav2Letter.from_preset("tiny").eval()
    spec = ModelSpec.from_wav2letter(model)
    spec.forward_with_activations(torch.randn(1, 128, 20))
    with pytest.raises(ValueError):
        spec.forward_with_activations(torch.randn(1, 7, 20))
    assert all(not m._forward_hooks for m in model.modules())


def test_unsupported_sequential():
    with pytest.raises(ValueError, match="BatchNorm1d"):
        ModelSpec.from_sequential(
            nn.Sequential(nn.Conv1d(2, 2, 3), nn.BatchNorm1d(2)), labels=["_", "a"]
        )


@pytest.mark.parametrize("backend", ["fast", "generic"])
def test_log_prob_sensitivity_equals_the_reference(backend):
    """``sensitivity="log_prob"``: the gradient of log_softmax(Y)[c, t] (fast: from
    onehot - softmax at the top), against the per-event autograd reference."""
    torch.manual_seed(0)
    spec = ModelSpec.from_wav2letter(Wav2Letter.from_preset("small").eval())
    x = torch.randn(1, 128, 161)
    t = events_at_edges(81)
    c = torch.randint(0, 29, (len(t),))
    other = getattr(S, backend)
    assert_same(
        spec, x, t, c, functools.partial(other, sensitivity="log_prob"),
        reference=functools.partial(S.reference, sensitivity="log_prob"),
    )  # fmt: skip
    # and it is not the logit's gradient
    logit = S.reference(spec, x, t, c, ["conv10"])["conv10"].values
    log_prob = S.reference(spec, x, t, c, ["conv10"], sensitivity="log_prob")["conv10"].values
    assert (logit - log_prob).abs().max() > 1e-3 * logit.abs().max()
    with pytest.raises(ValueError, match="sensitivity"):
        S.reference(spec, x, t, c, ["conv10"], sensitivity="prob")
