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
