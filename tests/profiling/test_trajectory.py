"""GradNAPs across training: each step of a trajectory is exactly the profile of that
checkpoint alone; a killed run resumes to the same trajectory; --events final."""

import numpy as np
import pytest
import torch

from gradnap.audio.features import FeatureConfig
from gradnap.data.alphabet import Alphabet
from gradnap.models import Wav2Letter
from gradnap.models.checkpoint import load, save_checkpoint
from gradnap.profiling import profiles
from gradnap.profiling import trajectory as traj_mod
from gradnap.profiling.trajectory import checkpoint_info, trajectory
from tests.conftest import write_librispeech

LAYERS = ["conv2", "conv9"]
STEPS = (1, 7, 40)
TEXTS = {"19-198-0000": "HELLO WORLD", "19-198-0001": "ABC", "84-121-0000": "ZOO"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_librispeech(tmp_path_factory.mktemp("corpus"), TEXTS, seconds=1.0)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Three tiny-preset checkpoints (kept out of step order in their names)."""
    folder = tmp_path_factory.mktemp("run") / "run.steps"
    for k, step in enumerate(STEPS):
        torch.manual_seed(k)
        model = Wav2Letter.from_preset("tiny")
        with torch.no_grad():  # sharper outputs: fewer blank frames, more events
            dict(model.layers())["conv11"].conv.conv.weight.mul_(20)
        info = {"step": step, "epoch": step / 40, "dev_cer": 1.0 - k / 4}
        save_checkpoint(
            folder / f"ckpt-{2 - k}.pt", model, Alphabet(), FeatureConfig(),
            extra={"trajectory": info},
        )  # fmt: skip
    return folder


def _same(a, b):
    for var in b.data_vars:
        np.testing.assert_array_equal(a[var].values, b[var].values, err_msg=var)


@pytest.fixture(scope="module")
def whole(checkpoints, corpus):
    out = checkpoints.parent / "traj.nc"
    traj = trajectory(checkpoints, corpus, out, LAYERS, progress=False)
    assert out.is_file() and not (checkpoints.parent / "traj.nc.steps").exists()
    return traj


def test_each_step_is_that_checkpoint_alone(checkpoints, corpus, whole):
    traj = whole
    assert list(traj["step"].values) == list(STEPS)
    np.testing.assert_allclose(traj["dev_cer"].values, [1.0, 0.75, 0.5])
    paths = sorted(checkpoints.glob("*.pt"), key=lambda p: checkpoint_info(p)["step"])
    for k, path in enumerate(paths):
        alone = profiles(load(path), corpus, LAYERS, progress=False)
        groups = [str(g) for g in alone["group"].values]
        assert int(traj["n_events"].isel(step=k)) == int(alone["n_events"]) > 0
        counts = traj["count"].isel(step=k).to_series()
        assert counts[groups].tolist() == alone["count"].values.tolist()
        assert (counts.drop(groups) == 0).all()  # groups of other steps: count 0 here
        for layer in LAYERS:
            step = traj[layer].to_dataset().isel(step=k).sel(group=groups)
            _same(step, alone[layer].to_dataset())


def test_resume_after_a_kill(checkpoints, corpus, whole, tmp_path, monkeypatch):
    calls = {"n": 0}

    class Killed(traj_mod.Profiler):
        def update(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3 + 2:  # the second checkpoint's second utterance
                raise KeyboardInterrupt
            return super().update(*args, **kwargs)

    out = tmp_path / "b.nc"
    monkeypatch.setattr(traj_mod, "Profiler", Killed)
    with pytest.raises(KeyboardInterrupt):
        trajectory(checkpoints, corpus, out, LAYERS, progress=False)
    monkeypatch.undo()
    assert len(list((tmp_path / "b.nc.steps").glob("*.pt"))) == 1
    with pytest.raises(FileExistsError, match="resume"):
        trajectory(checkpoints, corpus, out, LAYERS, progress=False)
    resumed = trajectory(checkpoints, corpus, out, LAYERS, resume=True, progress=False)
    for layer in LAYERS:
        xr_a, xr_b = whole[layer].to_dataset(), resumed[layer].to_dataset()
        _same(xr_b, xr_a)
        assert xr_a.identical(xr_b)


def test_events_of_the_final_checkpoint(checkpoints, corpus, tmp_path):
    traj = trajectory(
        checkpoints, corpus, tmp_path / "f.nc", ["conv9"], events="final", progress=False
    )
    n = traj["n_events"].values
    assert (n == n[-1]).all() and n[-1] > 0  # the same events at every step
    np.testing.assert_array_equal(traj["count"].values, traj["count"].values[-1:].repeat(3, 0))
    assert '"events": "final"' in traj.attrs["config"]
    with pytest.raises(ValueError, match="events"):
        trajectory(checkpoints, corpus, tmp_path / "g.nc", events="mine")


def test_a_checkpoint_with_no_events_is_a_step_with_none(checkpoints, corpus, tmp_path):
    """Early in training a model predicts only blanks: its step has 0 events, NaN profiles
    and count 0 (not an error after the whole run)."""
    run = tmp_path / "run.steps"
    run.mkdir()
    for path in sorted(checkpoints.glob("*.pt")):
        (run / path.name).write_bytes(path.read_bytes())
    blank = load(run / "ckpt-2.pt")  # step 1
    with torch.no_grad():  # the blank (class 0) wins every frame
        dict(blank.layers())["conv11"].conv.conv.bias[0] = 1e4
    payload = torch.load(run / "ckpt-2.pt", weights_only=True)
    payload["state_dict"] = blank.state_dict()
    torch.save(payload, run / "ckpt-2.pt")
    traj = trajectory(run, corpus, tmp_path / "t.nc", ["conv9"], progress=False)
    assert traj["n_events"].values[0] == 0 and (traj["n_events"].values[1:] > 0).all()
    assert (traj["count"].isel(step=0) == 0).all()
    assert np.isnan(traj["conv9"]["gradnap"].isel(step=0).values).all()
    alone = profiles(load(run / "ckpt-0.pt"), corpus, ["conv9"], progress=False)["conv9"]
    groups = [str(g) for g in alone["group"].values]
    _same(traj["conv9"].to_dataset().isel(step=2).sel(group=groups), alone.to_dataset())
    with pytest.raises(ValueError, match="only blanks"):
        trajectory(run / "ckpt-2.pt", corpus, tmp_path / "u.nc", ["conv9"], progress=False)
