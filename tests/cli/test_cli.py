import shutil

import pytest
import torch
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


@pytest.mark.parametrize(
    "cmd",
    [
        "model-info", "train", "eval", "synth", "align", "export", "profile", "summary",
        "sanity", "report", "dynamics",
    ],
)  # fmt: skip
def test_help_for_every_subcommand(cmd):
    r = invoke(cmd, "--help")
    assert r.exit_code == 0 and "Usage" in r.output


def test_the_help_test_covers_every_subcommand():
    import typer.main

    names = {c.name for c in typer.main.get_command(app).commands.values()}
    covered = test_help_for_every_subcommand.pytestmark[0].args[1]
    assert names == set(covered)


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


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite not installed")
def test_synth_and_list_voices(tmp_path):
    r = invoke("synth", "--list-voices")
    assert r.exit_code == 0 and "flite-rms" in r.output and "available" in r.output
    r = invoke(
        "synth", "--out", tmp_path / "c", "--sentences", "6", "--voices", "flite-slt,flite-awb"
    )
    assert r.exit_code == 0, r.output
    train = read_corpus(tmp_path / "c" / "train")
    assert set(train.speakers()) <= {"104", "106"}
    assert read_corpus(tmp_path / "c" / "test-unseen-voice").speakers() == ["105"]
    r = invoke("synth", "--out", tmp_path / "d", "--voices", "nobody")
    assert r.exit_code == 1 and "unknown voice 'nobody'" in r.output


@pytest.fixture
def tiny_model(tmp_path):
    from gradnap.audio import FeatureConfig
    from gradnap.data import Alphabet
    from gradnap.models import Wav2Letter
    from gradnap.models.checkpoint import save_checkpoint

    return save_checkpoint(
        tmp_path / "tiny.pt", Wav2Letter.from_preset("tiny"), Alphabet(), FeatureConfig()
    )


def test_profile_command(small_corpus, tiny_model, tmp_path):
    from gradnap.corpus.textgrid import Alignment, write_textgrid
    from gradnap.data import read_corpus

    for utt in read_corpus(small_corpus):
        phones = [("sil", 0.0, 0.3), ("AH", 0.3, 1.0), ("sil", 1.0, utt.duration)]
        write_textgrid(
            tmp_path / f"{utt.id}.TextGrid", Alignment([("x", 0.3, 1.0)], phones, utt.duration)
        )
    out = tmp_path / "p.nc"
    r = invoke(
        "profile",
        "--model",
        tiny_model,
        "--corpus",
        small_corpus,
        "--out",
        out,
        "--group-by",
        "grapheme,phoneme,speaker",
        "--alignments",
        tmp_path,
        "--layers",
        "input,conv1,conv11",
        "--include-blank",
    )
    assert r.exit_code == 0, r.output
    tree = gradnap.load_profiles(out)
    assert set(tree.children) == {"input", "conv1", "conv11"}
    assert {"phoneme:AH", "speaker:19", "speaker:84"} <= set(tree["group"].values)


def test_profile_errors(small_corpus, tiny_model, tmp_path):
    out = tmp_path / "p.nc"
    args = ["profile", "--model", tiny_model, "--corpus", small_corpus, "--out", out]
    r = invoke(*args, "--layers", "conv1,conv99")
    assert r.exit_code == 1 and "unknown layer(s) 'conv99'" in r.output
    r = invoke(*args, "--group-by", "phoneme")
    assert r.exit_code == 1 and "no TextGrid found" in r.output and "gradnap align" in r.output
    r = invoke(*args, "--group-by", "colour")
    assert r.exit_code == 1 and "unknown grouping" in r.output
    assert not out.exists() and not list(tmp_path.glob(".p.nc*"))


def test_export_half(tiny_model, tmp_path):
    r = invoke("export", "--model", tiny_model, "--out", tmp_path / "h.pt")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "h.pt").stat().st_size < tiny_model.stat().st_size


def test_export_keeps_a_kept_checkpoints_step(tmp_path):
    """A checkpoint kept along training stays usable by gradnap dynamics once exported."""
    from gradnap.audio import FeatureConfig
    from gradnap.data import Alphabet
    from gradnap.models import Wav2Letter
    from gradnap.models.checkpoint import read_checkpoint, save_checkpoint

    info = {"step": 37, "epoch": 1.5, "dev_cer": 0.61}
    kept = save_checkpoint(
        tmp_path / "step-0000037.pt", Wav2Letter.from_preset("tiny"), Alphabet(),
        FeatureConfig(), extra={"trajectory": info},
    )  # fmt: skip
    r = invoke("export", "--model", kept, "--out", tmp_path / "h.pt")
    assert r.exit_code == 0, r.output
    payload = read_checkpoint(tmp_path / "h.pt")
    assert payload["trajectory"] == info
    assert payload["state_dict"]["conv1.conv.conv.weight"].dtype == torch.float16


def test_profile_rejects_alignments_of_other_audio(small_corpus, tiny_model, tmp_path):
    from gradnap.corpus.textgrid import Alignment, write_textgrid
    from gradnap.data import read_corpus

    for utt in read_corpus(small_corpus):
        write_textgrid(
            tmp_path / f"{utt.id}.TextGrid", Alignment([], [("sil", 0.0, 4.0)], 4.0)
        )  # audio lasts 1.5 s
    r = invoke(
        "profile",
        "--model",
        tiny_model,
        "--corpus",
        small_corpus,
        "--out",
        tmp_path / "p.nc",
        "--group-by",
        "phoneme",
        "--alignments",
        tmp_path,
    )
    assert r.exit_code == 1
    assert "ends at 4.000 s but its audio lasts 1.500 s" in r.output
    assert not (tmp_path / "p.nc").exists()


def test_eval_normalize_text_and_low_rate_warning(tiny_model, tmp_path):
    import soundfile as sf

    from tests.conftest import tone

    corpus = tmp_path / "c" / "ann"
    corpus.mkdir(parents=True)
    sf.write(corpus / "a.wav", tone(3.0, sr=8000), 8000)
    (corpus / "a.lab").write_text("Hello, World! It's 42.\n")
    r = invoke("eval", "--model", tiny_model, "--corpus", corpus.parent)
    assert r.exit_code == 1 and "characters not in the alphabet for a" in r.output
    r = invoke("eval", "--model", tiny_model, "--corpus", corpus.parent, "--normalize-text")
    assert r.exit_code == 0, r.output
    assert "warning:" in r.output and "below 16 kHz (8000 Hz" in r.output
