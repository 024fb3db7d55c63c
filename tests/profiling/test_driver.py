"""gradnap.profiles over a corpus: the library owns the run (result written atomically,
partial file kept and then deleted, provenance), the checkpoint throttling rule on a fake
clock, feature workers; partial files hold tensors and plain data only, never code."""

import pickle

import numpy as np
import pytest
import torch

import gradnap
from gradnap.models import Wav2Letter
from gradnap.models.checkpoint import DEFAULT_CORPUS, DEFAULT_MODEL
from gradnap.profiling import ModelSpec, Profiler, driver
from gradnap.profiling.result import config_of
from tests.profiling.test_run import assert_trees_close

FAST = {"layers": ["conv10"], "progress": False}  # one-frame windows: cheap gradients


def test_profiles_writes_the_result_and_removes_its_partial_file(tmp_path, monkeypatch):
    out = tmp_path / "p.nc"
    seen = []
    real_save = driver._save_partial

    def save(path, *args):
        real_save(path, *args)
        seen.append(path.exists())

    monkeypatch.setattr(driver, "_save_partial", save)
    tree = gradnap.profiles(
        DEFAULT_MODEL, DEFAULT_CORPUS, out=out, limit=2, checkpoint_every=1, **FAST
    )
    assert seen and all(seen)  # OUT.partial was kept while running ...
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.nc"]  # ... and deleted after
    back = gradnap.load_profiles(out)
    assert back.identical(tree)
    cfg = config_of(back)
    assert cfg["model_path"] == str(DEFAULT_MODEL.resolve())
    assert len(cfg["model_sha256"]) == 64
    # the same weights give the same hash, whether given as a file or a loaded model
    again = gradnap.profiles(gradnap.load(), DEFAULT_CORPUS, limit=1, **FAST)
    assert config_of(again)["model_sha256"] == cfg["model_sha256"]
    # a partial file of another run is not silently overwritten
    (tmp_path / "q.nc.partial").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="--resume"):
        gradnap.profiles(DEFAULT_MODEL, DEFAULT_CORPUS, out=tmp_path / "q.nc", limit=1, **FAST)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize(
    "save_seconds, saved",
    [
        (0.0, [1, 2, 3, 4, 5, 6]),  # free saves: every checkpoint_every utterances
        (0.1, [1, 3, 5]),  # 19 x 0.1 s must pass since the last save: every 2 s
        (30.0, [1]),  # a save as slow as many utterances is not repeated
    ],
)
def test_checkpoints_stay_under_5_percent_of_the_time(monkeypatch, tmp_path, save_seconds, saved):
    """Each utterance takes 1 s on a fake clock; a save costs ``save_seconds``."""
    clock, saves = FakeClock(), []
    real_update = driver.Profiler.update

    def update(self, *args, **kw):
        clock.now += 1.0
        return real_update(self, *args, **kw)

    def save(path, profiler, done, signature):
        saves.append(len(done))
        clock.now += save_seconds

    monkeypatch.setattr(driver, "_clock", clock)
    monkeypatch.setattr(driver.Profiler, "update", update)
    monkeypatch.setattr(driver, "_save_partial", save)
    model = gradnap.load()
    gradnap.profiles(
        model, DEFAULT_CORPUS, limit=6, checkpoint=tmp_path / "p.partial", checkpoint_every=1,
        **FAST,
    )  # fmt: skip
    assert saves == saved


def test_feature_workers_change_nothing():
    """Features extracted in 2 DataLoader worker processes give the same result."""
    model = gradnap.load()
    kw = {"group_by": ["grapheme", "phoneme"], "limit": 3, "progress": False}
    kw["layers"] = ["input", "conv1", "conv10"]
    inline = gradnap.profiles(model, DEFAULT_CORPUS, **kw)
    workers = gradnap.profiles(model, DEFAULT_CORPUS, workers=2, **kw)
    assert int(inline["n_events"]) == int(workers["n_events"]) > 0
    assert_trees_close(inline, workers)


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
