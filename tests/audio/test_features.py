import numpy as np
import pytest
import torch

from gradnap.audio.features import FeatureConfig, FeatureStats, features
from tests.conftest import tone


@pytest.mark.parametrize("n, frames", [(16000, 101), (16159, 101), (16160, 102), (400, 3)])
def test_shape_and_dtype(n, frames):
    x = features(np.random.default_rng(0).standard_normal(n).astype(np.float32) * 0.1, 16000)
    assert x.shape == (128, frames)
    assert x.dtype == torch.float32


def test_utterance_z_normalization():
    x = features(tone(2.0), 16000)
    np.testing.assert_allclose(x.mean(dim=1).numpy(), 0.0, atol=1e-4)
    stds = x.std(dim=1, correction=0).numpy()
    assert np.all(np.abs(stds - 1.0) < 1e-3)


def test_digital_silence_is_finite():
    wav = np.concatenate([np.zeros(8000, np.float32), tone(0.5)])
    raw = features(wav, 16000, FeatureConfig(normalize="none"))
    assert torch.isfinite(raw).all()
    assert float(raw[:, 5:40].min()) == pytest.approx(np.log(1e-6), abs=1e-4)  # the floor
    assert torch.isfinite(features(np.zeros(16000, np.float32), 16000)).all()
    assert torch.count_nonzero(features(np.zeros(16000, np.float32), 16000)) == 0


def test_tone_peaks_in_the_matching_mel_bin():
    cfg = FeatureConfig(normalize="none")
    x = features(tone(1.0, freq=1000.0), 16000, cfg)
    peak = int(x[:, 10:-10].mean(dim=1).argmax())
    centre = cfg.mel_frequencies()[peak]
    assert abs(centre - 1000.0) < 60.0


def test_stereo_mixdown_either_layout():
    left, right = tone(1.0, 300.0), tone(1.0, 900.0, seed=1)
    mono = features((left + right) / 2, 16000)
    torch.testing.assert_close(features(np.stack([left, right], axis=1), 16000), mono)
    torch.testing.assert_close(features(np.stack([left, right], axis=0), 16000), mono)
    torch.testing.assert_close(features(torch.from_numpy(np.stack([left, right])), 16000), mono)


def test_resampling_to_16k():
    x8 = features(tone(1.0, sr=8000), 8000)
    assert x8.shape == (128, 1 + 16000 // 160)
    raw = FeatureConfig(normalize="none")
    x44 = features(tone(1.0, 440.0, sr=44100), 44100, raw)
    assert x44.shape == (128, 101)
    ref = features(tone(1.0, 440.0), 16000, raw)
    corr = np.corrcoef(x44.mean(1).numpy(), ref.mean(1).numpy())[0, 1]
    assert corr > 0.97


def test_corpus_statistics():
    cfg = FeatureConfig(normalize="corpus")
    raw = features(tone(1.0), 16000, FeatureConfig(normalize="none"))
    stats = FeatureStats(mean=np.full(128, 2.0), std=np.full(128, 4.0))
    x = features(tone(1.0), 16000, cfg, stats)
    torch.testing.assert_close(x, (raw - 2.0) / (4.0 + 1e-5))
    with pytest.raises(ValueError, match="needs stats"):
        features(tone(1.0), 16000, cfg)


@pytest.mark.parametrize(
    "wav, match",
    [
        (np.zeros((2, 2, 10), np.float32), "1-D or 2-D"),
        (np.array([0.0, np.nan] * 100, np.float32), "NaN"),
        (np.zeros(0, np.float32), "empty"),
    ],
)
def test_bad_waveforms(wav, match):
    with pytest.raises(ValueError, match=match):
        features(wav, 16000)


def test_bad_settings():
    with pytest.raises(ValueError, match="normalize"):
        FeatureConfig(normalize="global")
    with pytest.raises(ValueError, match="sample_rate"):
        features(tone(0.1), 0)


def test_corpus_statistics_from_waveforms():
    waves = [(tone(1.0, 300.0), 16000), (tone(0.5, 900.0, seed=1), 16000)]
    stats = FeatureStats.from_waveforms(waves)
    raw = torch.cat([features(w, sr, FeatureConfig(normalize="none")) for w, sr in waves], 1)
    np.testing.assert_allclose(stats.mean, raw.double().mean(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(stats.std, raw.double().std(1, correction=0).numpy(), rtol=1e-4)
    x = torch.cat([features(w, sr, FeatureConfig(normalize="corpus"), stats) for w, sr in waves], 1)
    np.testing.assert_allclose(x.mean(1).numpy(), 0, atol=1e-3)
