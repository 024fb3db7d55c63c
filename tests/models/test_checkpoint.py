import pytest
import torch

import gradnap
from gradnap.audio import FeatureConfig
from gradnap.data import Alphabet
from gradnap.models import Wav2Letter
from gradnap.models.checkpoint import CheckpointError, read_checkpoint, save_checkpoint


@pytest.fixture
def saved(tmp_path):
    model = Wav2Letter.from_preset("tiny")
    path = save_checkpoint(tmp_path / "m.pt", model, Alphabet(), FeatureConfig(floor=1e-5))
    return model, path


def test_roundtrip(saved):
    model, path = saved
    loaded = gradnap.load(path)
    assert not loaded.training
    assert loaded.alphabet == Alphabet() and loaded.feature_config.floor == 1e-5
    assert loaded.config == model.config
    x = torch.randn(1, 128, 77)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    assert not list(path.parent.glob(".*tmp"))  # no temporary file left behind


def test_half_precision_export(tmp_path):
    model = Wav2Letter.from_preset("tiny")
    path = save_checkpoint(tmp_path / "h.pt", model, Alphabet(), FeatureConfig(), half=True)
    loaded = gradnap.load(path)
    assert next(loaded.parameters()).dtype == torch.float32
    w, w16 = model.conv1.conv.conv.weight, loaded.conv1.conv.conv.weight
    torch.testing.assert_close(w16, w.half().float())


def test_corrupt_and_truncated(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="trunc.pt: not a readable checkpoint"):
        gradnap.load(tmp_path / "trunc.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="junk.pt: not a readable checkpoint"):
        gradnap.load(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint file does not exist"):
        gradnap.load(tmp_path / "missing.pt")


def test_other_version_and_foreign_files(saved, tmp_path):
    _, path = saved
    payload = read_checkpoint(path)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "v99.pt")
    with pytest.raises(CheckpointError, match="v99.pt: checkpoint format version 99"):
        gradnap.load(tmp_path / "v99.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="foreign.pt: not a gradnap checkpoint"):
        gradnap.load(tmp_path / "foreign.pt")
    payload["format_version"] = 1
    payload["model_config"]["channels"] = 8
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="mismatch.pt: weights do not fit"):
        gradnap.load(tmp_path / "mismatch.pt")
