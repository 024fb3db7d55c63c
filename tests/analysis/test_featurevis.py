"""Feature visualization: composable objectives, loss decreasing, regularization scaling."""

import math

import numpy as np
import pytest
import torch

from gradnap.analysis import l1, l2, neurons, optimal_input, sonify, visualize_group
from gradnap.analysis.featurevis import preactivations
from gradnap.audio import FeatureConfig
from gradnap.models import Wav2Letter
from gradnap.profiling import ModelSpec, Profiler


@pytest.fixture(scope="module")
def spec():
    torch.manual_seed(0)
    return ModelSpec.from_wav2letter(Wav2Letter.from_preset("tiny").eval())


def test_objectives_compose():
    state = {"x": torch.tensor([[3.0, -4.0]]), "z": {}}
    assert float(l1(2.0)(state)) == 14.0
    assert float(l2(1.0)(state)) == 5.0
    combo = 2 * l1(1.0) - l2(1.0)
    assert float(combo(state)) == 14.0 - 5.0
    assert "L1" in combo.name and "L2" in combo.name


def test_neurons_objective_reads_the_preactivation_at_one_time(spec):
    x = torch.randn(1, 128, 60)
    with torch.no_grad():
        z = preactivations(spec, x, "conv2")["conv2"]
    obj = neurons("conv2", [1, 3], [1.0, -1.0], t=5)
    value = float(obj({"x": x, "z": {"conv2": z}}))
    assert value == pytest.approx(float(z[0, 1, 5] - z[0, 3, 5]))
    # the pre-activation is the conv output before the ReLU: it has negative values
    assert (z < 0).any()


def test_optimization_raises_the_objective(spec):
    obj = neurons("conv3", [0, 2, 4]) - l1(1e-3) - l2(1e-3)
    x, history = optimal_input(spec, obj, spec.geometry.receptive_field("conv3"), steps=20, lr=0.05)
    assert x.shape == (128, spec.geometry.receptive_field("conv3"))
    assert len(history) == 21
    assert history[-1] > history[0]  # the loss -objective decreases
    assert np.mean(np.diff(history) > 0) > 0.8


def test_regularization_is_scaled_by_the_receptive_field(spec):
    """visualize_group divides the L1 weight by RF_l and the L2 weight by sqrt(RF_l): for an
    N(0, 1) start the penalties are then about the same size in every layer."""
    prof = Profiler(spec)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        prof.update(torch.randn(128, 150, generator=g), classes=torch.arange(75) % 5 + 1)
    tree = prof.result()
    group = str(tree["group"].values[0])
    penalties = {}
    for layer in ("conv1", "conv4"):
        x = visualize_group(
            spec, tree[layer].to_dataset(), layer, group, steps=0, l1_weight=1.0, l2_weight=1.0
        )
        rf = spec.geometry.receptive_field(layer)
        assert x.shape == (128, rf)
        assert f"{1 / rf:g}*L1" in x.attrs["objective"]
        assert f"{1 / math.sqrt(rf):g}*L2" in x.attrs["objective"]
        v = torch.from_numpy(x.values)
        penalties[layer] = (float(v.abs().sum()) / rf, float(v.norm()) / math.sqrt(rf))
    rf1, rf4 = spec.geometry.receptive_field("conv1"), spec.geometry.receptive_field("conv4")
    assert rf4 > rf1
    for a, b in zip(penalties["conv1"], penalties["conv4"]):
        assert a == pytest.approx(b, rel=0.1)


def test_sonify_gives_a_short_normalized_wave():
    x = np.random.default_rng(0).normal(size=(128, 50))
    wav = sonify(x, FeatureConfig(), n_iter=4)
    assert wav.dtype == np.float32
    assert abs(len(wav) - 49 * 160) <= 160
    assert 0.85 < np.abs(wav).max() <= 0.9 + 1e-6
