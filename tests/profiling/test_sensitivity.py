"""The fast and generic paths against the per-event autograd reference."""

import pytest
import torch
from torch import nn

from gradnap.models import Wav2Letter
from gradnap.profiling import ModelSpec
from gradnap.profiling import sensitivity as S


def events_at_edges(t_out: int) -> torch.Tensor:
    return torch.tensor([0, 1, t_out // 2, t_out - 2, t_out - 1])


def assert_same(spec, x, t, c, other):
    layers = spec.layer_names
    ref = S.reference(spec, x, t, c, layers)
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
def test_fast_equals_reference_on_presets(preset, t_in):
    torch.manual_seed(0)
    model = Wav2Letter.from_preset(preset).eval()
    spec = ModelSpec.from_wav2letter(model)
    x = torch.randn(1, 128, t_in)
    t = events_at_edges((t_in + 1) // 2)
    c = torch.randint(0, 29, (len(t),))
    assert_same(spec, x, t, c, S.fast)


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
def test_fast_equals_reference_on_another_layout(t_in):
    spec = ModelSpec.from_sequential(custom_model(), labels=list("_abcde"))
    assert spec.layer_names == ["input", "conv1", "conv2", "conv3", "conv4"]
    x = torch.randn(1, 10, t_in)
    t_out = spec.geometry.lengths(t_in)[-1]
    assert spec.model(x).shape[-1] == t_out
    assert_same(spec, x, events_at_edges(t_out), torch.tensor([1, 2, 3, 4, 5]), S.fast)


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
