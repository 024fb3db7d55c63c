"""A small profile result (tiny random model, random utterances with phone alignments)."""

import pytest
import torch

from gradnap.corpus.textgrid import Alignment
from gradnap.models import Wav2Letter
from gradnap.profiling import ModelSpec, Profiler


@pytest.fixture(scope="session")
def small_result():
    torch.manual_seed(0)
    model = Wav2Letter.from_preset("tiny").eval()
    with torch.no_grad():
        top = dict(model.layers())["conv11"].conv.conv
        top.weight.mul_(50)
        top.bias.zero_()
    spec = ModelSpec.from_wav2letter(model)
    prof = Profiler(spec, group_by=["grapheme", "phoneme"])
    g = torch.Generator().manual_seed(1)
    cycle = ["AA", "AE", "IY", "T", "S", "N"]
    for i in range(6):
        t_in = 200
        phones = [(cycle[(i + k) % 6], 0.3 * k, 0.3 * (k + 1)) for k in range(6)]
        phones.append(("sil", 1.8, t_in / 100))
        prof.update(
            torch.randn(128, t_in, generator=g), alignment=Alignment([], phones, t_in / 100)
        )
    return spec, prof.result()
