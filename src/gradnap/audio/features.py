"""Log-mel features: the model's input ``X`` (METHOD.md, "Objects" and feature framing).

One function, :func:`features`, is used by training and analysis alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import librosa
import numpy as np
import torch


@dataclass(frozen=True)
class FeatureConfig:
    """Feature settings, stored with every model (METHOD.md, feature framing defaults).

    Frame ``k`` is centred at ``k * hop_length / sample_rate`` seconds and an utterance of
    ``N`` samples gives ``1 + N // hop_length`` frames. ``floor`` bounds the mel power from
    below before the natural log, so digital silence gives ``log(floor)``, not ``-inf``.
    ``normalize`` is ``"utterance"`` (z-normalize each mel bin over the utterance, the
    default **[choice]**), ``"corpus"`` (with :class:`FeatureStats`) or ``"none"``.
    """

    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float = 8000.0
    floor: float = 1e-6
    normalize: str = "utterance"

    def __post_init__(self) -> None:
        if self.normalize not in ("utterance", "corpus", "none"):
            raise ValueError(
                f"normalize must be 'utterance', 'corpus' or 'none', not {self.normalize!r}"
            )

    @property
    def hop_seconds(self) -> float:
        return self.hop_length / self.sample_rate

    def n_frames(self, n_samples: int) -> int:
        """Number of feature frames for ``n_samples`` samples at ``sample_rate``."""
        return 1 + n_samples // self.hop_length

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureConfig:
        return cls(**d)

    def mel_frequencies(self) -> np.ndarray:
        """Centre frequency (Hz) of each mel bin (Slaney mel scale)."""
        return librosa.mel_frequencies(self.n_mels + 2, fmin=self.fmin, fmax=self.fmax)[1:-1]


@dataclass(frozen=True)
class FeatureStats:
    """Corpus mean and standard deviation per mel bin, for ``normalize="corpus"``."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def from_waveforms(cls, waveforms, config: FeatureConfig | None = None) -> FeatureStats:
        """Statistics of the un-normalized log-mel frames of ``(waveform, rate)`` pairs,
        accumulated in float64 in one pass."""
        raw = replace(config or FeatureConfig(), normalize="none")
        n, total, squares = 0, 0.0, 0.0
        for wav, sr in waveforms:
            x = features(wav, sr, raw).double()
            n += x.shape[1]
            total = total + x.sum(1)
            squares = squares + (x * x).sum(1)
        if n == 0:
            raise ValueError("no audio to compute statistics from")
        mean = total / n
        std = (squares / n - mean * mean).clamp_min(0).sqrt()
        return cls(mean.numpy(), std.numpy())


EPS = 1e-5


def features(
    waveform: np.ndarray | torch.Tensor,
    sample_rate: int,
    config: FeatureConfig | None = None,
    stats: FeatureStats | None = None,
) -> torch.Tensor:
    """Log-mel spectrogram ``(n_mels, T)`` float32 of a waveform.

    Parameters
    ----------
    waveform:
        Samples in [-1, 1]: ``(N,)`` mono, or 2-D multichannel, either ``(N, channels)``
        as soundfile returns it or ``(channels, N)`` (the shorter axis is taken as the
        channels). Channels are averaged.
    sample_rate:
        Rate of ``waveform`` in Hz; other rates than ``config.sample_rate`` are resampled
        (librosa, soxr).
    config:
        :class:`FeatureConfig`; the defaults are the paper's 128-bin features.
    stats:
        Corpus statistics, required when ``config.normalize == "corpus"``.

    Returns
    -------
    torch.Tensor
        ``(n_mels, 1 + N16 // hop_length)`` float32, where ``N16`` is the length at 16 kHz.

    Example
    -------
    >>> import numpy as np, gradnap
    >>> gradnap.features(np.zeros(16000, dtype=np.float32), 16000).shape
    torch.Size([128, 101])
    """
    cfg = config or FeatureConfig()
    wav = _mono(waveform)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if sample_rate != cfg.sample_rate:
        wav = librosa.resample(wav, orig_sr=sample_rate, target_sr=cfg.sample_rate)
    if len(wav) == 0:
        raise ValueError("waveform is empty")
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    spec = torch.stft(
        x,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        window=torch.hann_window(cfg.n_fft),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    power = spec.real.square() + spec.imag.square()  # (n_fft // 2 + 1, T)
    mel = _mel_matrix(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax) @ power
    logmel = mel.clamp_min(cfg.floor).log()
    return _normalize(logmel, cfg, stats).float()


def _normalize(logmel: torch.Tensor, cfg: FeatureConfig, stats: FeatureStats | None):
    if cfg.normalize == "none":
        return logmel
    if cfg.normalize == "utterance":
        mean = logmel.mean(dim=1, keepdim=True)
        std = logmel.std(dim=1, correction=0, keepdim=True)
    else:
        if stats is None:
            raise ValueError("normalize='corpus' needs stats=FeatureStats(mean, std)")
        mean = torch.as_tensor(stats.mean, dtype=logmel.dtype).reshape(-1, 1)
        std = torch.as_tensor(stats.std, dtype=logmel.dtype).reshape(-1, 1)
    return (logmel - mean) / (std + EPS)


def _mono(waveform) -> np.ndarray:
    wav = waveform.detach().cpu().numpy() if isinstance(waveform, torch.Tensor) else waveform
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2:
        channel_axis = 1 if wav.shape[1] <= wav.shape[0] else 0
        wav = wav.mean(axis=channel_axis)
    elif wav.ndim != 1:
        raise ValueError(f"waveform must be 1-D or 2-D, got shape {wav.shape}")
    if not np.all(np.isfinite(wav)):
        raise ValueError("waveform contains NaN or infinite samples")
    return wav


@lru_cache(maxsize=8)
def _mel_matrix(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> torch.Tensor:
    fb = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney"
    )
    return torch.from_numpy(fb)
