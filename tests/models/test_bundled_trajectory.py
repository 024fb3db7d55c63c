"""The committed training trajectory (src/gradnap/assets/trajectory-small): what the README
and `make demo` rely on."""

from pathlib import Path

import torch

import gradnap
from gradnap.models.checkpoint import read_checkpoint
from gradnap.profiling.trajectory import checkpoint_info, find_checkpoints
from gradnap.train.keep import kept_steps

FOLDER = Path(gradnap.__file__).parent / "assets" / "trajectory-small"


def test_at_most_8_half_precision_checkpoints_in_20_mb():
    paths = find_checkpoints(FOLDER)
    assert 2 <= len(paths) <= 8
    assert sum(p.stat().st_size for p in paths) <= 20e6
    for p in paths:
        payload = read_checkpoint(p)
        assert payload["model_config"]["preset"] == "small"
        floats = [v for v in payload["state_dict"].values() if v.is_floating_point()]
        assert floats and all(v.dtype == torch.float16 for v in floats)


def test_steps_are_log_spaced_and_the_model_learns():
    infos = sorted((checkpoint_info(p) for p in find_checkpoints(FOLDER)), key=lambda i: i["step"])
    steps = [i["step"] for i in infos]
    assert steps == kept_steps(steps[-1], len(steps))
    cer = [i["dev_cer"] for i in infos]
    assert cer[0] > 0.9 and cer[-1] < 0.7 and cer[-1] == min(cer)  # 94 % -> 56 % (README)
    assert infos[-1]["epoch"] > infos[0]["epoch"]
