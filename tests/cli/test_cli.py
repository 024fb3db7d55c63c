import shutil

import pytest
from typer.testing import CliRunner

import gradnap
from gradnap.cli.main import app
from gradnap.data import read_corpus

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_version():
    r = invoke("--version")
    assert r.exit_code == 0 and r.output.strip() == f"gradnap {gradnap.__version__}"


@pytest.mark.parametrize("cmd", ["model-info", "train", "eval", "synth"])
def test_help_for_every_subcommand(cmd):
    r = invoke(cmd, "--help")
    assert r.exit_code == 0 and "Usage" in r.output


def test_model_info_paper():
    r = invoke("model-info", "--preset", "paper")
    assert r.exit_code == 0
    assert "24,662,529 (24.66 M)" in r.output
    assert "receptive field: 194 input frames" in r.output
    assert "conv11" in r.output


def test_model_info_errors(tmp_path):
    r = invoke("model-info", "--preset", "huge")
    assert r.exit_code == 1 and "unknown preset 'huge'" in r.output
    (tmp_path / "bad.pt").write_bytes(b"junk")
    r = invoke("model-info", "--model", tmp_path / "bad.pt")
    assert r.exit_code == 1 and "not a readable checkpoint" in r.output


def test_train_eval_and_resume(small_corpus, tmp_path):
    out = tmp_path / "m.pt"
    r = invoke(
        "train",
        "--corpus",
        small_corpus,
        "--preset",
        "tiny",
        "--out",
        out,
        "--epochs",
        "1",
        "--batch-seconds",
        "4",
        "--lr",
        "1e-3",
    )
    assert r.exit_code == 0, r.output
    assert '"epoch": 1' in r.output and out.exists()
    r = invoke("train", "--corpus", small_corpus, "--preset", "tiny", "--out", out)
    assert r.exit_code == 1 and "pass --resume" in r.output
    r = invoke("train", "--corpus", small_corpus, "--out", out, "--epochs", "2", "--resume")
    assert r.exit_code == 0 and '"epoch": 2' in r.output and '"epoch": 1' not in r.output
    r = invoke("model-info", "--model", out)
    assert r.exit_code == 0 and "'tiny'" in r.output
    r = invoke(
        "eval", "--model", out, "--corpus", small_corpus, "--by-speaker", "--beam-width", "4"
    )
    assert r.exit_code == 0, r.output
    for word in ("greedy", "beam", "19", "84", "CER %"):
        assert word in r.output


def test_bad_corpus_is_one_clear_error(small_corpus, tmp_path):
    (small_corpus / "19" / "198" / "19-198-0001.flac").write_bytes(b"junk")
    r = invoke("eval", "--model", tmp_path / "none.pt", "--corpus", small_corpus)
    assert r.exit_code == 1 and "none.pt: checkpoint file does not exist" in r.output
    r = invoke(
        "train",
        "--corpus",
        small_corpus,
        "--preset",
        "tiny",
        "--out",
        tmp_path / "m.pt",
        "--epochs",
        "1",
    )
    assert r.exit_code == 1 and "19-198-0001.flac: unreadable audio" in r.output
    assert "Traceback" not in r.output
    r = invoke(
        "train",
        "--corpus",
        small_corpus,
        "--preset",
        "tiny",
        "--out",
        tmp_path / "m.pt",
        "--epochs",
        "1",
        "--skip-bad",
        "--batch-seconds",
        "4",
    )
    assert r.exit_code == 0 and "skipped: " in r.output


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_synth_espeak(tmp_path):
    r = invoke("synth", "--out", tmp_path / "c", "--sentences", "2", "--voices", "en-us,en-gb")
    assert r.exit_code == 0, r.output
    corpus = read_corpus(tmp_path / "c")
    assert len(corpus) == 4 and corpus.speakers() == ["1000", "1001"]
    assert corpus[0].text == "the birch canoe slid on the smooth planks"
    assert all(u.sample_rate == 16000 and 1.0 < u.duration < 6.0 for u in corpus)
