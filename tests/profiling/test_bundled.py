"""The bundled model and evaluation corpus, end to end through `gradnap profile`."""

from typer.testing import CliRunner

import gradnap
from gradnap.cli.main import app
from gradnap.data import read_corpus
from gradnap.models.checkpoint import DEFAULT_CORPUS, DEFAULT_MODEL


def test_bundled_model_and_corpus_load():
    model = gradnap.load()
    assert not model.training and model.config.preset == "mid"
    assert DEFAULT_MODEL.stat().st_size < 30e6
    size = sum(p.stat().st_size for p in DEFAULT_CORPUS.rglob("*") if p.is_file())
    assert size < 20e6
    for split in ("test", "test-unseen-voice"):
        assert len(read_corpus(DEFAULT_CORPUS / split)) >= 20


def test_profile_bundled_round_trip(tmp_path):
    out = tmp_path / "p.nc"
    r = CliRunner().invoke(
        app,
        [
            "profile",
            "--out",
            str(out),
            "--limit",
            "3",
            "--group-by",
            "grapheme,phoneme",
            "--layers",
            "input,conv1,conv9",
        ],
    )
    assert r.exit_code == 0, r.output
    tree = gradnap.load_profiles(out)
    groups = [str(g) for g in tree["group"].values]
    assert any(g.startswith("grapheme:") for g in groups)
    assert any(g.startswith("phoneme:") for g in groups)
    assert gradnap.profiling.result.config_of(tree)["model_path"] == str(DEFAULT_MODEL)
    direct = gradnap.profiles(
        gradnap.load(),
        read_corpus(DEFAULT_CORPUS),
        ["input", "conv1", "conv9"],
        ["grapheme", "phoneme"],
        limit=3,
        progress=False,
    )
    for layer in ("input", "conv1", "conv9"):
        assert direct[layer].to_dataset()["gradnap"].equals(tree[layer].to_dataset()["gradnap"])
    # the Python result survives a round trip through a file unchanged
    again = gradnap.load_profiles(gradnap.save_profiles(direct, tmp_path / "direct.nc"))
    assert again.identical(direct)
