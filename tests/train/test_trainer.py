import pytest
import torch

import gradnap
from gradnap.data import read_corpus
from gradnap.models.checkpoint import CheckpointError, read_checkpoint
from gradnap.train import TrainConfig, train
from gradnap.train.batching import length_batches


def quiet(*_):
    pass


def run(corpus, out, **kw):
    cfg = TrainConfig(
        **{
            "preset": "tiny",
            "epochs": 2,
            "lr": 3e-3,
            "batch_seconds": 4.0,
            "checkpoint_every": 2,
            **kw,
        }
    )
    train_set, dev_set = corpus.split(0.3)
    return train(train_set, dev_set, out, cfg, progress=False, log=quiet)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_length_batches():
    lengths = [100, 900, 120, 880, 500, 510, 110]
    plan = length_batches(lengths, max_frames=1000, seed=0, epoch=0)
    assert sorted(i for b in plan for i in b) == list(range(7))
    for b in plan:
        assert max(lengths[i] for i in b) * len(b) <= 1000
    assert {tuple(sorted(b)) for b in plan} >= {(0, 2, 6)}  # short ones together
    assert plan == length_batches(lengths, 1000, seed=0, epoch=0)
    orders = {tuple(map(tuple, length_batches(lengths, 1000, seed=0, epoch=e))) for e in range(8)}
    assert len(orders) > 1  # shuffled per epoch


def test_a_few_steps_reduce_ctc_loss(small_corpus, tmp_path):
    model = run(read_corpus(small_corpus), tmp_path / "m.pt", epochs=12)
    history = read_checkpoint(tmp_path / "m.pt")["train_state"]["state"]["history"]
    losses = [h["train_loss"] for h in history]
    assert len(losses) == 12 and "dev_cer" in history[0]
    assert losses[-1] < 0.7 * losses[0]
    assert not model.training


def test_same_seed_same_weights_other_seed_not(small_corpus, tmp_path):
    corpus = read_corpus(small_corpus)
    a = weights(run(corpus, tmp_path / "a.pt", seed=3))
    b = weights(run(corpus, tmp_path / "b.pt", seed=3))
    c = weights(run(corpus, tmp_path / "c.pt", seed=4))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_resume_gives_the_uninterrupted_weights(small_corpus, tmp_path):
    corpus = read_corpus(small_corpus)
    full = weights(
        run(
            corpus,
            tmp_path / "full.pt",
            epochs=3,
            dropout=0.2,
            spec_augment=True,
            lr_schedule="cosine",
        )
    )
    run(
        corpus,
        tmp_path / "cut.pt",
        epochs=3,
        dropout=0.2,
        spec_augment=True,
        lr_schedule="cosine",
        max_steps=3,
    )
    assert read_checkpoint(tmp_path / "cut.pt")["train_state"]["state"]["step"] == 3
    resumed = train(
        *corpus.split(0.3),
        tmp_path / "cut.pt",
        TrainConfig(epochs=3),
        resume=True,
        progress=False,
        log=quiet,
    )
    for k, v in full.items():
        torch.testing.assert_close(resumed.state_dict()[k], v, rtol=0, atol=0)
    h_full = read_checkpoint(tmp_path / "full.pt")["train_state"]["state"]["history"]
    h_cut = read_checkpoint(tmp_path / "cut.pt")["train_state"]["state"]["history"]
    assert h_full == h_cut
    loaded = gradnap.load(tmp_path / "cut.pt")
    torch.testing.assert_close(
        loaded.state_dict()["conv1.conv.conv.weight"], full["conv1.conv.conv.weight"]
    )


def test_refuses_to_overwrite_and_to_resume_nothing(small_corpus, tmp_path):
    corpus = read_corpus(small_corpus)
    run(corpus, tmp_path / "m.pt", epochs=1)
    with pytest.raises(FileExistsError, match="pass --resume"):
        run(corpus, tmp_path / "m.pt", epochs=1)
    with pytest.raises(CheckpointError, match="does not exist"):
        train(corpus, None, tmp_path / "none.pt", resume=True, progress=False, log=quiet)


def test_mixed_precision_trains(small_corpus, tmp_path):
    """bfloat16 autocast on the CPU: the loss still falls, the weights stay float32."""
    model = run(read_corpus(small_corpus), tmp_path / "m.pt", epochs=6, amp=True)
    history = read_checkpoint(tmp_path / "m.pt")["train_state"]["state"]["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_cli_passes_every_training_option(small_corpus, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "m.pt"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "gradnap",
            "train",
            "--corpus",
            str(small_corpus),
            "--out",
            str(out),
            "--preset",
            "tiny",
            "--max-steps",
            "1",
            "--lr-schedule",
            "cosine",
            "--spec-augment",
            "--amp",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    cfg = read_checkpoint(out)["train_state"]["config"]
    assert (cfg["lr_schedule"], cfg["spec_augment"], cfg["amp"]) == ("cosine", True, True)


def test_two_process_ddp_training(small_corpus, tmp_path):
    """torchrun with 2 gloo processes on localhost (DistributedDataParallel, each rank
    half of every batch): the loss falls and rank 0 writes a checkpoint that loads."""
    import os
    import subprocess

    from tests.conftest import torchrun

    out = tmp_path / "m.pt"
    proc = subprocess.run(
        torchrun(
            2,
            "train",
            "--corpus",
            str(small_corpus),
            "--out",
            str(out),
            "--preset",
            "tiny",
            "--epochs",
            "2",
            "--batch-seconds",
            "4",
            "--lr",
            "0.003",
        ),  # fmt: skip
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    history = read_checkpoint(out)["train_state"]["state"]["history"]
    assert len(history) == 2 and history[-1]["train_loss"] < history[0]["train_loss"]
    model = gradnap.load(out)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_keep_checkpoints_spaced_in_log_step(small_corpus, tmp_path):
    from gradnap.profiling.trajectory import checkpoint_info
    from gradnap.train.keep import keep_dir, kept_steps

    assert kept_steps(1000, 4) == [1, 10, 100, 1000]
    assert kept_steps(10, 8) == [1, 2, 3, 4, 5, 6, 7, 10]  # distinct, first and last kept
    assert kept_steps(3, 8) == [1, 2, 3]
    out = tmp_path / "m.pt"
    run(read_corpus(small_corpus), out, epochs=3, keep_checkpoints=4)
    final = read_checkpoint(out)["train_state"]["state"]
    kept = sorted(keep_dir(out).glob("*.pt"))
    infos = [checkpoint_info(p) for p in kept]
    steps = [i["step"] for i in infos]
    assert len(kept) == 4 and steps[0] == 1 and steps[-1] == final["step"]
    assert steps == sorted(set(steps))
    assert all(0 <= i["dev_cer"] <= 1.5 and 0 < i["epoch"] <= 3 for i in infos)
    assert infos[-1]["dev_cer"] == pytest.approx(final["history"][-1]["dev_cer"])
    assert "train_state" not in read_checkpoint(kept[0])  # models only, no optimizer
