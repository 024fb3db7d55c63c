import pytest
import torch

from gradnap.models import PRESETS, Wav2Letter


def test_paper_preset_size():
    model = Wav2Letter.from_preset("paper")
    assert model.num_parameters() == 24_662_529  # 24.66 M
    assert model.layer_names == ("input",) + tuple(f"conv{i}" for i in range(1, 12))
    assert [m.conv.conv.out_channels for _, m in model.layers()] == [250] * 8 + [2000] * 2 + [29]


@pytest.mark.parametrize("preset", [p for p in PRESETS if p != "paper"])
def test_smaller_presets_keep_the_layout(preset):
    small, paper = Wav2Letter.from_preset(preset), Wav2Letter.from_preset("paper")
    assert [s.kernel for s in small.geometry.specs] == [s.kernel for s in paper.geometry.specs]
    assert [s.stride for s in small.geometry.specs] == [s.stride for s in paper.geometry.specs]
    assert small.num_parameters() < paper.num_parameters()


@pytest.mark.parametrize("t", [1, 2, 101, 102])
def test_output_length_and_relu(t):
    model = Wav2Letter.from_preset("tiny").eval()
    acts = {}
    with torch.no_grad():
        x = torch.randn(2, 128, t)
        h = x
        for name, layer in model.layers():
            h = layer(h)
            acts[name] = h
        y = model(x)
    assert y.shape == (2, 29, (t + 1) // 2)
    torch.testing.assert_close(y, acts["conv11"])
    assert all(float(acts[f"conv{i}"].min()) >= 0 for i in range(1, 11))
    assert float(acts["conv11"].min()) < 0  # logits: no ReLU
    assert model.output_lengths(torch.tensor([t])).item() == (t + 1) // 2


def test_bad_input_shape():
    with pytest.raises(ValueError, match=r"expected \(batch, 128, time\)"):
        Wav2Letter.from_preset("tiny")(torch.zeros(1, 80, 50))
    with pytest.raises(KeyError, match="unknown preset 'huge'"):
        Wav2Letter.from_preset("huge")
