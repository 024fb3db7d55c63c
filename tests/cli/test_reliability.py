"""The commands fail fast with one line, before the work, and keep what exists."""

import json
import os
import signal
import time

import numpy as np
import pytest
import soundfile as sf
import xarray as xr

from gradnap.cli.main import app
from tests.cli.test_cli import invoke, tiny_model  # noqa: F401 - the fixture
from tests.conftest import tone


def profile(model, corpus, out, *more):
    return invoke("profile", "--model", model, "--corpus", corpus, "--out", out, *more)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "tpu"], "--device tpu: use cpu, cuda or cuda:N"),
        (["--batch-events", "0"], "--batch-events must be a positive whole number"),
        (["--batch-events", "-3"], "--batch-events must be a positive whole number"),
        (["--crop-width", "0"], "--crop-width must be a positive whole number"),
        (["--limit", "0"], "--limit must be a positive whole number"),
        (["--limit", "-1"], "--limit must be a positive whole number"),
        (["--group-by", ","], "--group-by: give at least one grouping"),
        (["--threads", "-1"], "--threads must be 0 (all cores) or a positive number"),
    ],
)
def test_bad_options_are_one_line(small_corpus, tiny_model, tmp_path, args, message):  # noqa: F811
    r = profile(tiny_model, small_corpus, tmp_path / "p.nc", *args)
    assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "p.nc").exists() and not list(tmp_path.glob(".p.nc*"))


def test_outputs_checked_first_and_kept(small_corpus, tiny_model, tmp_path):  # noqa: F811
    r = profile(tiny_model, small_corpus, tmp_path)
    assert r.exit_code == 1 and "is a folder" in r.output
    out = tmp_path / "p.nc"
    out.write_bytes(b"an earlier result")
    r = profile(tiny_model, small_corpus, out, "--limit", "2")
    assert r.exit_code == 1 and "exists; pass --force" in r.output
    assert out.read_bytes() == b"an earlier result"
    r = profile(tiny_model, small_corpus, out, "--limit", "2", "--force", "--layers", "conv11")
    assert r.exit_code == 0, r.output
    assert "from 2 utterances" in invoke("summary", out).output


def test_bad_utterances_found_before_the_work(small_corpus, tiny_model, tmp_path):  # noqa: F811
    chapter = small_corpus / "84" / "121"
    wav = tone(1.5)
    wav[-1] = np.inf  # the last utterance of the run
    (chapter / "84-121-0002.flac").unlink()
    sf.write(chapter / "84-121-0002.wav", wav, 16000, subtype="FLOAT")
    out = tmp_path / "p.nc"
    r = profile(tiny_model, small_corpus, out)
    assert r.exit_code == 1 and "1 bad utterance(s)" in r.output
    assert "84-121-0002.wav: 1 NaN or infinite sample(s)" in r.output
    assert "profiling" not in r.output and not out.exists()
    r = profile(tiny_model, small_corpus, out, "--skip-bad", "--layers", "conv11")
    assert r.exit_code == 0 and "skipped:" in r.output and "84-121-0002.wav" in r.output
    assert "from 5 utterances" in invoke("summary", out).output


def test_summary_of_a_foreign_netcdf(tmp_path):
    xr.Dataset({"t": ("x", np.arange(3.0))}).to_netcdf(tmp_path / "f.nc", engine="h5netcdf")
    r = invoke("summary", tmp_path / "f.nc")
    assert r.exit_code == 1 and "not a gradnap profile result" in r.output
    assert "Traceback" not in r.output


def test_train_resume_refuses_changed_settings(small_corpus, tmp_path):
    out = tmp_path / "m.pt"
    base = ["train", "--corpus", small_corpus, "--preset", "tiny", "--out", out]
    r = invoke(*base, "--epochs", "1", "--batch-seconds", "4", "--max-steps", "1")
    assert r.exit_code == 0, r.output
    before = out.read_bytes()
    r = invoke(*base, "--epochs", "1", "--resume", "--lr", "0.01")
    assert r.exit_code == 1 and "cannot change on --resume: --lr 0.01" in r.output
    r = invoke(*base, "--resume", "--preset", "mid")
    assert r.exit_code == 1 and "--preset mid (the checkpoint has tiny)" in r.output
    assert out.read_bytes() == before
    r = invoke(*base[:-2], "--out", tmp_path, "--epochs", "1")
    assert r.exit_code == 1 and "is a folder" in r.output


def test_align_keeps_existing_textgrids(small_corpus):
    from gradnap.corpus.align import align_corpus
    from gradnap.corpus.textgrid import Alignment, write_textgrid
    from gradnap.data import read_corpus

    corpus = read_corpus(small_corpus)
    tg = write_textgrid(
        corpus[0].audio.with_suffix(".TextGrid"), Alignment([], [("sil", 0.0, 1.5)], 1.5)
    )
    exact = tg.read_bytes()
    with pytest.raises(FileExistsError, match="1 of 6 TextGrids exist already"):
        align_corpus(corpus, progress=False)
    r = invoke("align", "--corpus", small_corpus)
    assert r.exit_code == 1 and "pass --force" in r.output and tg.read_bytes() == exact


def test_synth_rerun_with_other_settings_is_refused(tmp_path):
    from gradnap.corpus.synth import SETTINGS, _check_settings

    settings = {"seed": 0, "held_out_voice": "flite-rms", "voices": ["flite-rms"], "sentences": 6}
    _check_settings(tmp_path / "c", settings)
    assert json.loads((tmp_path / "c" / SETTINGS).read_text()) == settings
    _check_settings(tmp_path / "c", settings)  # the same settings complete it
    r = invoke("synth", "--out", tmp_path / "c", "--voices", "flite-rms", "--seed", "1")
    assert r.exit_code == 1 and "seed 1 (the corpus has 0)" in r.output


def test_ctrl_c_says_so(small_corpus, tiny_model, tmp_path, monkeypatch):  # noqa: F811
    import gradnap.data.validate

    def interrupted_while_checking(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, in the middle of the command
        time.sleep(5)

    monkeypatch.setattr(gradnap.data.validate, "read_checked", interrupted_while_checking)
    out = tmp_path / "p.nc"
    try:
        r = invoke("profile", "--model", tiny_model, "--corpus", small_corpus, "--out", out)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert r.exit_code == 130 and "interrupted (Ctrl-C)" in r.output
    assert "Traceback" not in r.output and not out.exists()


assert app  # the tests above run the real command line


def test_align_checks_its_out_folder_before_reading_the_corpus(tmp_path):
    """``align --out`` is checked first: a file there, or a folder that cannot be
    created, is one line naming it, before the (here absent) corpus is read."""
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    r = invoke("align", "--corpus", tmp_path / "absent", "--out", taken)
    assert r.exit_code == 1 and f"{taken}: is a file" in r.output and "absent" not in r.output
    r = invoke("align", "--corpus", tmp_path / "absent", "--out", taken / "sub")
    assert r.exit_code == 1 and "cannot create" in r.output and "absent" not in r.output
