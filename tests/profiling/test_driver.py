"""The profiling driver's partial files: tensors and plain data only, never code."""

import pickle

import numpy as np
import pytest
import torch

from gradnap.models import Wav2Letter
from gradnap.profiling import ModelSpec, Profiler, driver


class _Payload:
    """Unpickling this would create ``marker`` (what a crafted partial file could do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_partial_file_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    partial = tmp_path / "result.nc.partial"
    torch.save(
        {"version": driver.PARTIAL_VERSION, "signature": "x", "x": _Payload(marker)}, partial
    )
    with pytest.raises(ValueError, match="not a readable gradnap partial profile"):
        driver._load_partial(partial, "x")
    assert not marker.exists()
    # a plain pickle (not a torch file) gets the same refusal
    partial.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match=str(partial.name)):
        driver._load_partial(partial, "x")
    assert not marker.exists()


def test_real_partial_file_round_trips_under_weights_only(tmp_path):
    torch.manual_seed(0)
    spec = ModelSpec.from_wav2letter(Wav2Letter.from_preset("tiny").eval())
    prof = Profiler(spec, group_by=["grapheme"], layers=["input", "conv1"])
    prof.update(torch.randn(128, 120), index=0)
    prof.update(torch.randn(128, 90), index=1)
    path = tmp_path / "p.partial"
    driver._save_partial(path, prof, [0, 1], "sig")
    state = driver._load_partial(path, "sig")
    assert state["done"] == [0, 1]
    again = Profiler(spec, group_by=["grapheme"], layers=["input", "conv1"])
    again.load_state_dict(state["profiler"])
    a, b = prof.result(), again.result()
    for layer in ("input", "conv1"):
        for var in a[layer].data_vars:
            np.testing.assert_allclose(a[layer][var].values, b[layer][var].values, rtol=1e-12)
    with pytest.raises(ValueError, match="other settings"):
        driver._load_partial(path, "another")
