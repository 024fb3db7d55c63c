"""``--model DIR`` (a saved Hugging Face ``*ForCTC`` model, safetensors only) through the
command line: ``model-info``, ``eval`` (greedy CTC over the model's labels, per speaker,
checked against the test's own decoding), ``sanity``, the refusals of ``train`` and
``export``, and ``report`` on its result."""

import csv
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from gradnap.cli.main import app
from gradnap.data import read_corpus
from gradnap.decode.metrics import error_rates

transformers = pytest.importorskip("transformers")

from tests.profiling.test_models_hf import LABELS, build  # noqa: E402

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny random Wav2Vec2ForCTC saved with safetensors and its vocab.json, and the
    model itself."""
    path = tmp_path_factory.mktemp("hf") / "w2v"
    model = build("wav2vec2")
    with torch.no_grad():  # sharper logits: a random model then emits varied labels
        model.lm_head.weight.mul_(30)
    model.save_pretrained(path, safe_serialization=True)
    assert list(path.glob("*.safetensors")) and not list(path.glob("*.bin"))
    vocab = {"|" if s == "|" else s: i for i, s in enumerate(LABELS)}
    (path / "vocab.json").write_text(json.dumps(vocab))
    return path, model


def own_decoding(model, wav):
    """The test's greedy CTC: the feature extractor's normalisation, argmax, repeats
    merged, blank (0) dropped, ``|`` a space."""
    fe = transformers.Wav2Vec2FeatureExtractor(do_normalize=True)
    x = fe(wav, sampling_rate=16000, return_tensors="pt").input_values
    with torch.no_grad():
        ids = model(x).logits[0].argmax(-1).tolist()
    out = [k for i, k in enumerate(ids) if (i == 0 or k != ids[i - 1]) and k != 0]
    return " ".join("".join(" " if LABELS[k] == "|" else LABELS[k] for k in out).split())


def test_model_info(saved, monkeypatch):
    from gradnap.cli import common

    monkeypatch.setattr(common.console, "width", 200)  # the table whole, not wrapped
    path, model = saved
    r = invoke("model-info", "--model", path)
    assert r.exit_code == 0, r.output
    for text in ("conv6", "projection", "wav2vec2.encoder.layers.1", "lm_head", "<space>",
                 "labels (12, blank '<pad>' = 0)", "20 ms"):  # fmt: skip
        assert text in r.output, text
    total = sum(p.numel() for p in model.parameters())
    assert f"parameters: {total:,}" in r.output


def test_eval_per_speaker_equals_the_tests_own_decoding(saved, small_corpus, tmp_path):
    path, model = saved
    hyps = tmp_path / "h.tsv"
    r = invoke("eval", "--model", path, "--corpus", small_corpus, "--by-speaker",
               "--hyps", hyps)  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(hyps.open(), delimiter="\t"))
    utts = {u.id: u for u in read_corpus(small_corpus)}
    assert len(rows) == len(utts) == 6
    want = {u.id: own_decoding(model, u.load()[0]) for u in utts.values()}
    assert {row["id"]: row["hypothesis"] for row in rows} == want
    assert any(want.values())  # not all empty: the comparison sees labels
    assert {row["id"]: row["reference"] for row in rows} == {
        i: u.text.lower() for i, u in utts.items()
    }
    lines = [line.split() for line in r.output.splitlines() if "greedy" in line]
    for speaker in ("19", "84"):
        ids = [i for i, u in utts.items() if u.speaker == speaker]
        s = error_rates([utts[i].text.lower() for i in ids], [want[i] for i in ids])
        row = next(cells for cells in lines if speaker in cells)
        assert f"{100 * s['cer']:.2f}" in row and f"{100 * s['wer']:.2f}" in row, row
    assert not any("beam" in line for line in r.output.splitlines())


def test_sanity(saved, small_corpus, tmp_path):
    import xarray as xr

    path, _ = saved
    out = tmp_path / "s.nc"
    r = invoke("sanity", "--model", path, "--corpus", small_corpus, "--limit", "2",
               "--layers", "conv6,layer1", "--group-by", "speaker,grapheme", "--out", out,
               "--variants", "gradnap", "--levels", "logits,layer1,conv0")  # fmt: skip
    assert r.exit_code == 0, r.output
    table = xr.load_dataset(out, engine="h5netcdf")
    assert list(table["randomized_down_to"].values) == ["logits", "layer1", "conv0"]
    assert list(table["layer"].values) == ["conv6", "layer1"]
    assert np.isfinite(table["spearman_abs_gradnap"].values).all()
    r = table["spearman_gradnap"]
    # the head alone leaves the activations (GradNAP's sign and ranks) as trained; with
    # every layer random, neither profile is kept
    assert float(r.sel(randomized_down_to="logits", layer="layer1")) > 0.9
    assert float(abs(r.sel(randomized_down_to="conv0")).max()) < 0.5


def test_train_and_export_refuse_it_with_a_reason(saved, small_corpus, tmp_path):
    path, _ = saved
    r = invoke("export", "--model", path, "--out", tmp_path / "m.pt")
    assert r.exit_code == 1 and "export writes Wav2Letter checkpoints only" in r.output
    assert "saved Hugging Face model" in r.output and not (tmp_path / "m.pt").exists()
    r = invoke("train", "--corpus", small_corpus, "--preset", path, "--out", tmp_path / "t.pt")
    assert r.exit_code == 1 and "a saved model folder gradnap loads" in r.output, r.output
    assert "Wav2Letter presets" in r.output and not (tmp_path / "t.pt").exists()


def test_profile_records_the_folder_and_report_uses_no_other_model(saved, small_corpus, tmp_path):
    """The result names the folder (not the bundled model, which the report used to take
    for the optimal inputs); the report says there are none and is written."""
    from gradnap.profiling import load_profiles
    from gradnap.profiling.result import config_of

    path, _ = saved
    out = tmp_path / "p.nc"
    r = invoke("profile", "--model", path, "--corpus", small_corpus, "--limit", "2",
               "--layers", "layer1", "--group-by", "speaker", "--out", out)  # fmt: skip
    assert r.exit_code == 0, r.output
    assert config_of(load_profiles(out))["model_path"] == str(path.resolve())
    r = invoke("report", out, "--out", tmp_path / "r", "--min-count", "1")
    assert r.exit_code == 0, r.output
    assert "optimal inputs: none" in r.output and (tmp_path / "r" / "index.html").is_file()


def test_sanity_names_an_unknown_level_before_any_work(saved, small_corpus, tmp_path):
    path, _ = saved
    r = invoke("sanity", "--model", path, "--corpus", small_corpus, "--levels", "layer9",
               "--out", tmp_path / "s.nc")  # fmt: skip
    assert r.exit_code == 1 and "unknown level(s) layer9; layers are conv0" in r.output
