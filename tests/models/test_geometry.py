"""Receptive fields and gradient-support windows against what autograd measures."""

import pytest
import torch

from gradnap.models import ConvSpec, Wav2Letter

# METHOD.md table (paper preset)
SUPPORT = {
    "input": 194,
    "conv1": 74,
    "conv2": 68,
    "conv3": 62,
    "conv4": 56,
    "conv5": 50,
    "conv6": 44,
    "conv7": 38,
    "conv8": 32,
    "conv9": 1,
    "conv10": 1,
    "conv11": 1,
}
RF = {
    "input": 1,
    "conv1": 48,
    "conv2": 60,
    "conv3": 72,
    "conv4": 84,
    "conv5": 96,
    "conv6": 108,
    "conv7": 120,
    "conv8": 132,
    "conv9": 194,
    "conv10": 194,
    "conv11": 194,
}


def test_paper_table():
    g = Wav2Letter.from_preset("tiny").geometry  # geometry does not depend on channels
    assert {n: g.support_width(n) for n in g.layer_names} == SUPPORT
    assert {n: g.receptive_field(n) for n in g.layer_names} == RF
    assert g.output_stride == 2


def test_same_padding_rule():
    spec = ConvSpec("c", kernel=48, stride=2)
    assert spec.out_length(100) == 50 and spec.same_padding(100) == (23, 23)
    assert spec.out_length(101) == 51 and spec.same_padding(101) == (23, 24)
    assert ConvSpec("c", 32).same_padding(10) == (15, 16)
    assert ConvSpec("c", 1).same_padding(10) == (0, 0)


def test_unknown_layer():
    with pytest.raises(KeyError, match="unknown layer 'conv99'.*conv11"):
        Wav2Letter.from_preset("tiny").geometry.index("conv99")


def measured_support(model, x, t):
    """Frames of each layer where d logits[c, t] / d A_l is non-zero (autograd)."""
    acts = {}
    hooks = [
        layer.register_forward_hook(lambda m, i, o, n=name: acts.__setitem__(n, o))
        for name, layer in model.layers()
    ]
    x = x.clone().requires_grad_(True)
    try:
        y = model(x)
    finally:
        for h in hooks:
            h.remove()
    names = list(acts)
    tensors = [x] + [acts[n] for n in names]
    grads = torch.autograd.grad(y[0, int(y[0, :, t].argmax()), t], tensors, allow_unused=True)
    out = {}
    for name, grad in zip(["input"] + names, grads):
        g = torch.zeros(tensors[0].shape[-1] if name == "input" else acts[name].shape[-1])
        if grad is not None:
            g = grad[0].abs().sum(0)
        nz = torch.nonzero(g).flatten()
        out[name] = (int(nz.min()), int(nz.max()) + 1) if len(nz) else None
    return out


@pytest.mark.parametrize("t_in", [301, 302])
@pytest.mark.parametrize("where", ["first", "second", "middle", "second_last", "last"])
def test_support_matches_autograd(t_in, where):
    torch.manual_seed(1)
    model = Wav2Letter.from_preset("tiny", channels=32, wide_channels=48).double()
    g = model.geometry
    t_out = g.lengths(t_in)[-1]
    t = {
        "first": 0,
        "second": 1,
        "middle": t_out // 2,
        "second_last": t_out - 2,
        "last": t_out - 1,
    }[where]
    measured = measured_support(model, torch.randn(1, 128, t_in, dtype=torch.float64), t)
    lengths = dict(zip(g.layer_names, g.lengths(t_in)))
    for name in g.layer_names[:-1]:
        start, stop = g.support(t, name, t_in)
        assert stop - start == g.support_width(name)
        expected = (max(start, 0), min(stop, lengths[name]))
        assert measured[name] == expected, name
