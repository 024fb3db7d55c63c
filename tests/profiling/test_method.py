"""A hand-made network whose GradNAP, NAvAI and NAP are worked out by hand."""

import pytest
import torch
from torch import nn

from gradnap.profiling import ModelSpec, Profiler, method


def hand_model():
    # conv1: 1x1 identity + ReLU; conv2: class 0 (blank) = 5.5, class 1 = 2 * A1
    conv1, conv2 = nn.Conv1d(1, 1, 1), nn.Conv1d(1, 2, 1)
    with torch.no_grad():
        conv1.weight.fill_(1.0)
        conv1.bias.zero_()
        conv2.weight.copy_(torch.tensor([[[0.0]], [[2.0]]]))
        conv2.bias.copy_(torch.tensor([5.5, 0.0]))
    return nn.Sequential(conv1, nn.ReLU(), conv2)


@pytest.mark.parametrize("path", ["fast", "reference", "generic"])
def test_profiles_by_hand(path):
    # utt s1: x = [1, 3, 2, 4]: 2*x > 5.5 at t = 1, 3 -> events with crops [1,3,2], [2,4,0]
    # utt s2: x = [5, 1, 0, 6]: events at t = 0, 3 -> crops [0,5,1], [0,6,0]
    spec = ModelSpec.from_sequential(hand_model(), labels=["_", "a"])
    prof = Profiler(spec, group_by=["speaker"], backend=path, crop_width=3)
    assert prof.update(torch.tensor([[1.0, 3, 2, 4]]), speaker="s1") == 2
    assert prof.update(torch.tensor([[5.0, 1, 0, 6]]), speaker="s2") == 2
    tree = prof.result()
    assert list(tree["group"].values) == ["speaker:s1", "speaker:s2"]
    assert tree["count"].values.tolist() == [2, 2]
    for layer in ("input", "conv1"):
        ds = tree[layer].to_dataset()
        assert ds["mean_activation"].sel(group="speaker:s1").values[0].tolist() == [1.5, 3.5, 1]
        assert ds["mean_activation_all"].values[0].tolist() == [0.75, 4.5, 0.75]
        # the gradient of the logit is non-zero only at the event's own frame
        mean_g = 2.0  # d(2 * relu(x)) / dx with x > 0, and d(2 * a) / da
        assert ds["mean_gradient"].values[:, 0].tolist() == [[0, mean_g, 0]] * 2
        assert ds["mask"].values[:, 0].tolist() == [[0, 1, 0]] * 2
        assert ds["gradnap"].values[:, 0].tolist() == [[0, -1, 0], [0, 1, 0]]
        assert ds["navai"].values[:, 0].tolist() == [[0.75, -1, 0.25], [-0.75, 1, -0.25]]
        assert ds["nap"].values[:, 0].tolist() == [[-1, 0.75, 0.25], [1, -0.75, -0.25]]
    assert tree["conv2"].to_dataset()["mean_gradient"].values[:, 1].tolist() == [[0, 1, 0]] * 2


def test_mask_and_responsiveness():
    g = torch.tensor([[[0.0, -2.0], [1.0, 0.5]], [[0.0, 0.0], [0.0, 0.0]]])
    assert method.mask(g).tolist() == [[[0, 1], [0.5, 0.25]], [[0, 0], [0, 0]]]
    p = torch.tensor([[1.0, -3.0, 1.0], [2.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    assert method.responsiveness(p).tolist() == [-5.0, 3.0, 0.0]


def test_mask_scaled_per_neuron():
    g = torch.tensor([[[0.0, -2.0], [1.0, 0.5]], [[0.0, 0.0], [0.0, 4.0]]])
    assert method.mask(g, "neuron").tolist() == [[[0, 1], [1, 0.5]], [[0, 0], [0, 1]]]
    with pytest.raises(ValueError, match="mask_scale"):
        method.mask(g, "row")


def test_variants_declare_their_sums():
    gradnap, navai, nap = method.make_variants(navai_align="activation_gradient")
    assert [s.key for s in gradnap.sums()] == [
        "activation@activation_gradient",
        "gradient@activation_gradient",
    ]
    assert [s.key for s in navai.sums()] == ["activation@activation_gradient"]
    assert [s.key for s in nap.sums()] == ["sorted@activation_gradient"]
    # NAvAI aligned like GradNAP shares GradNAP's activation sum: three sums in all
    assert len(method.needed_sums((gradnap, navai, nap))) == 3
    assert method.make_variants("nap,gradnap")[0].name == "nap"
    with pytest.raises(ValueError, match="unknown variant"):
        method.make_variants(["gradcam"])
    with pytest.raises(ValueError, match="each once"):
        method.make_variants(["nap", "nap"])


def test_saliency_variant_by_hand():
    """The mask comes from the group mean of |A*G|, not from |mean G|."""
    (variant,) = method.make_variants(["saliency"])
    assert [s.key for s in variant.sums()] == [
        "activation@activation_gradient",
        "saliency@activation_gradient",
    ]
    key_a, key_s = "activation@activation_gradient", "saliency@activation_gradient"
    group = {
        key_a: torch.tensor([[[1.0, 2.0], [3.0, 4.0]]]),
        key_s: torch.tensor([[[0.0, 4.0], [2.0, 1.0]]]),  # one group, 2 neurons x 2 offsets
    }
    total = {key_a: torch.tensor([[1.0, 0.0], [1.0, 2.0]]), key_s: torch.zeros(2, 2)}
    out = variant.profile(group, total)
    # mask = S / max S = [[0, 1], [.5, .25]]; (A - A_all) = [[0, 2], [2, 2]]
    assert out["saliency_mask"][1].tolist() == [[[0, 1], [0.5, 0.25]]]
    assert out["saliency"][1].tolist() == [[[0, 2], [1, 0.5]]]
    assert out["saliency"][0] == ("group", "neuron", "offset")
    # per neuron: rows [0, 4] / 4 and [2, 1] / 2
    (per_neuron,) = method.make_variants(["saliency"], mask_scale="neuron")
    assert per_neuron.profile(group, total)["saliency"][1].tolist() == [[[0, 2], [2, 1]]]


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_saliency_profiles_of_the_hand_model(path):
    # the events of test_profiles_by_hand; G = 2 at the event's frame, 0 elsewhere, so
    # |A*G| crops: s1 [0, 2*3, 0], [0, 2*4, 0]; s2 [0, 2*5, 0], [0, 2*6, 0]
    spec = ModelSpec.from_sequential(hand_model(), labels=["_", "a"])
    prof = Profiler(
        spec, group_by=["speaker"], backend=path, crop_width=3, variants=["gradnap", "saliency"]
    )
    prof.update(torch.tensor([[1.0, 3, 2, 4]]), speaker="s1")
    prof.update(torch.tensor([[5.0, 1, 0, 6]]), speaker="s2")
    tree = prof.result()
    for layer in ("input", "conv1"):
        ds = tree[layer].to_dataset()
        assert ds.attrs["profiles"] == "gradnap,saliency"
        assert ds["mean_saliency"].values[:, 0].tolist() == [[0, 7, 0], [0, 11, 0]]
        assert ds["saliency_mask"].values[:, 0].tolist() == [[0, 1, 0]] * 2
        assert ds["saliency"].values[:, 0].tolist() == [[0, -1, 0], [0, 1, 0]]
        assert "navai" not in ds and "nap" not in ds
