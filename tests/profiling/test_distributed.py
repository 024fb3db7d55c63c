"""Scale-out: torchrun with 2 gloo processes equals 1 process; a killed run resumes to the
same result; the shard split is deterministic and balanced."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gradnap.models.checkpoint import DEFAULT_CORPUS
from gradnap.profiling import load_profiles
from gradnap.profiling.distributed import shard
from tests.conftest import torchrun
from tests.profiling.test_run import assert_trees_close

GRADNAP = [sys.executable, "-m", "gradnap"]
# the input, the strided conv1 and the one-frame conv10: what 1 process == 2 and resuming
# are about shows there as in every layer, at a fraction of the cost
ARGS = [
    "--corpus", str(DEFAULT_CORPUS), "--group-by", "grapheme,phoneme,speaker",
    "--layers", "input,conv1,conv10",
]  # fmt: skip


def env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "p.nc"
    subprocess.run(
        GRADNAP + ["profile", "--out", str(out), "--limit", "8"] + ARGS,
        check=True,
        env=env(),
        capture_output=True,
        timeout=300,
    )
    return load_profiles(out)


def assert_top_events_equal(a, b):
    """The top events are exact: the same utterances, times and values, not just close."""
    for layer in ("input", "conv1"):
        for var in ("top_activation", "top_utterance", "top_time"):
            np.testing.assert_array_equal(a[layer][var].values, b[layer][var].values)


def test_shard_is_deterministic_balanced_and_complete():
    rng = np.random.default_rng(0)
    durations = list(rng.uniform(1, 20, size=101))
    parts = [shard(durations, r, 3) for r in range(3)]
    assert sorted(i for p in parts for i in p) == list(range(101))
    loads = [sum(durations[i] for i in p) for p in parts]
    assert max(loads) - min(loads) <= max(durations)
    assert parts == [shard(durations, r, 3) for r in range(3)]
    assert shard(durations, 0, 1) == list(range(101))


def test_two_gloo_processes_equal_one(one_process, tmp_path):
    out = tmp_path / "p2.nc"
    cmd = torchrun(2, "profile", "--out", str(out), "--limit", "8") + ARGS
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = load_profiles(out)
    assert '"processes": 2' in two.attrs["config"]
    assert int(two["n_events"]) == int(one_process["n_events"])
    assert list(two["group"].values) == list(one_process["group"].values)
    np.testing.assert_array_equal(two["count"].values, one_process["count"].values)
    assert_trees_close(one_process, two)
    assert_top_events_equal(one_process, two)
    assert not list(tmp_path.glob("*.partial*"))


def test_killed_run_resumes_to_the_same_result(one_process, tmp_path):
    out = tmp_path / "p.nc"
    partial = Path(str(out) + ".partial")
    cmd = GRADNAP + ["profile", "--out", str(out), "--limit", "8", "--checkpoint-every", "1"]
    proc = subprocess.Popen(
        cmd + ARGS, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    while not partial.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert partial.exists(), "no partial checkpoint appeared"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists()  # nothing at the output path
    done = torch.load(partial, weights_only=True)["done"]
    assert 0 < len(done) < 8
    # resuming without --resume is refused; with it, the result equals one run
    refused = subprocess.run(cmd + ARGS, env=env(), capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and "--resume" in refused.stderr
    subprocess.run(
        cmd + ARGS + ["--resume"], env=env(), check=True, capture_output=True, timeout=300
    )
    resumed = load_profiles(out)
    assert_trees_close(one_process, resumed)
    assert_top_events_equal(one_process, resumed)
    np.testing.assert_array_equal(resumed["count"].values, one_process["count"].values)
    assert not partial.exists()


def test_two_gloo_processes_equal_one_for_a_hugging_face_model(tmp_path):
    """``torchrun --nproc-per-node 2 -m gradnap profile --model DIR`` (a saved tiny random
    Wav2Vec2ForCTC, the generic path) equals one process: the same events, groups and
    counts, every profile within 1e-6 of its variable's largest magnitude, the same top
    events."""
    import json

    pytest.importorskip("transformers")
    from typer.testing import CliRunner

    from gradnap.cli.main import app
    from tests.conftest import write_librispeech
    from tests.profiling.test_models_hf import LABELS, build

    model_dir = tmp_path / "w2v"
    build("wav2vec2").save_pretrained(model_dir, safe_serialization=True)
    (model_dir / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(LABELS)}))
    texts = {"19-198-0000": "AB", "19-198-0001": "CD", "84-121-0000": "EF", "84-121-0001": "GH"}
    corpus = write_librispeech(tmp_path / "corpus", texts, seconds=0.5)
    args = ["profile", "--model", str(model_dir), "--corpus", str(corpus), "--group-by",
            "grapheme,speaker", "--layers", "conv0,layer1,logits", "--include-blank"]  # fmt: skip
    r = CliRunner().invoke(app, args + ["--out", str(tmp_path / "one.nc")])
    assert r.exit_code == 0, r.output
    proc = subprocess.run(
        torchrun(2, *args, "--out", str(tmp_path / "two.nc")),
        env=env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = load_profiles(tmp_path / "one.nc"), load_profiles(tmp_path / "two.nc")
    assert '"processes": 2' in two.attrs["config"] and '"processes": 1' in one.attrs["config"]
    assert int(two["n_events"]) == int(one["n_events"]) > 0
    assert list(two["group"].values) == list(one["group"].values)
    assert {str(g).split(":")[0] for g in one["group"].values} == {"grapheme", "speaker"}
    np.testing.assert_array_equal(two["count"].values, one["count"].values)
    assert_trees_close(one, two)
    for layer in ("conv0", "layer1"):  # (the logits keep no top events)
        for var in ("top_utterance", "top_time"):
            np.testing.assert_array_equal(one[layer][var].values, two[layer][var].values)
