"""Front ends: what a model is fed, from a waveform (``features=`` of a ``ModelSpec``).

Each front end turns ``(waveform, sample_rate)`` into the model input ``X`` as
``(channels, time)`` (a waveform is one channel) and knows its frame hop and the
coordinates of its channels (mel Hz, MFCC index).

>>> fe = front_end("log-mel-80")
>>> fe(np.zeros(16000, dtype=np.float32), 16000).shape
torch.Size([80, 101])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.fft import dct

from gradnap.audio.features import FeatureConfig, _mono, features


class FrontEnd:
    """Base: ``__call__(waveform, sample_rate) -> (C, T)`` float32."""

    name = "front end"
    sample_rate = 16000
    hop_seconds = 0.01
    feature_config: FeatureConfig | None = None

    def __call__(self, waveform, sample_rate: int) -> torch.Tensor:
        raise NotImplementedError

    def coords(self) -> dict:
        """Coordinates of the input layer's channels: ``{name: (values, attrs)}``."""
        return {}

    def to_dict(self) -> dict:
        return {"name": self.name, "sample_rate": self.sample_rate, "hop_seconds": self.hop_seconds}


class _Framed(FrontEnd):
    """A front end framed by a :class:`FeatureConfig` (``self.config``): its sample rate
    and hop are the config's."""

    config: FeatureConfig

    @property
    def sample_rate(self):
        return self.config.sample_rate

    @property
    def hop_seconds(self):
        return self.config.hop_seconds


@dataclass
class LogMel(_Framed):
    """Log-mel spectrogram (:func:`gradnap.features`), any number of bins."""

    config: FeatureConfig

    name = "log-mel"

    @property
    def feature_config(self):
        return self.config

    def __call__(self, waveform, sample_rate):
        return features(waveform, sample_rate, self.config)

    def coords(self):
        return {"frequency": (self.config.mel_frequencies(), {"units": "Hz"})}

    def to_dict(self):
        return {"name": self.name, **self.config.to_dict()}


@dataclass
class MFCC(_Framed):
    """MFCCs: the DCT-II (orthonormal) of the log-mel frames, first ``n_mfcc`` coefficients,
    z-normalized per utterance like the log-mels (``normalize``)."""

    n_mfcc: int = 13
    config: FeatureConfig = FeatureConfig(n_mels=40)

    name = "mfcc"

    def __call__(self, waveform, sample_rate):
        raw = features(waveform, sample_rate, replace(self.config, normalize="none"))
        c = torch.from_numpy(dct(raw.double().numpy(), type=2, norm="ortho", axis=0))
        c = c[: self.n_mfcc]
        if self.config.normalize == "utterance":
            c = (c - c.mean(1, keepdim=True)) / (c.std(1, correction=0, keepdim=True) + 1e-5)
        return c.float()

    def coords(self):
        return {"mfcc": (np.arange(self.n_mfcc), {"long_name": "MFCC index"})}

    def to_dict(self):
        return {"name": self.name, "n_mfcc": self.n_mfcc, **self.config.to_dict()}


@dataclass
class Waveform(FrontEnd):
    """The raw waveform as ``(1, N)`` at ``sample_rate``; ``normalize``: zero mean and unit
    variance per utterance (a Hugging Face feature extractor's ``do_normalize``)."""

    sample_rate: int = 16000
    normalize: bool = True

    name = "waveform"

    @property
    def hop_seconds(self):
        return 1.0 / self.sample_rate

    def __call__(self, waveform, sample_rate):
        import librosa

        wav = _mono(waveform)
        if sample_rate != self.sample_rate:
            wav = librosa.resample(wav, orig_sr=sample_rate, target_sr=self.sample_rate)
        x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
        if self.normalize:  # as transformers' Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm
            x = (x - x.mean()) / torch.sqrt(x.var(correction=0) + 1e-7)
        return x[None]

    def to_dict(self):
        return {"name": self.name, "sample_rate": self.sample_rate, "normalize": self.normalize}


@dataclass
class Custom(FrontEnd):
    """A user callable ``fn(waveform, sample_rate) -> (C, T)`` (or ``(T,)``); its hop is
    measured on 1 s and 2 s of silence when not given."""

    fn: Callable
    hop: float | None = None
    rate: int = 16000

    name = "custom"

    def __post_init__(self):
        if self.hop is None:
            a = self(np.zeros(self.rate, np.float32), self.rate).shape[-1]
            b = self(np.zeros(2 * self.rate, np.float32), self.rate).shape[-1]
            if a == b:
                raise ValueError("features: the callable's output does not grow with the input")
            self.hop = 1.0 / (b - a)

    @property
    def sample_rate(self):
        return self.rate

    @property
    def hop_seconds(self):
        return self.hop

    def __call__(self, waveform, sample_rate):
        x = torch.as_tensor(self.fn(waveform, sample_rate), dtype=torch.float32)
        return x[None] if x.dim() == 1 else x

    def to_dict(self):
        return {"name": getattr(self.fn, "__name__", "custom"), "hop_seconds": self.hop}


def front_end(spec=None) -> FrontEnd:
    """A front end from a name, a :class:`FeatureConfig`, a callable or a front end.

    Names: ``"log-mel"`` (128 bins), ``"log-mel-N"`` (N bins), ``"mfcc"`` / ``"mfcc-N"``,
    ``"waveform"`` (normalized) and ``"waveform-raw"`` (as read).
    """
    if spec is None:
        return LogMel(FeatureConfig())
    if isinstance(spec, FrontEnd):
        return spec
    if isinstance(spec, FeatureConfig):
        return LogMel(spec)
    if isinstance(spec, str):
        base, _, n = spec.partition("-") if spec[:4] != "log-" else ("log-mel", "", spec[8:])
        if spec.startswith("log-mel"):
            return LogMel(FeatureConfig(n_mels=int(n) if n else 128))
        if base == "mfcc":
            return MFCC(int(n) if n else 13)
        if spec in ("waveform", "waveform-raw"):
            return Waveform(normalize=spec == "waveform")
        raise ValueError(
            f"unknown front end {spec!r}: log-mel, log-mel-N, mfcc, mfcc-N, waveform, "
            "waveform-raw, a FeatureConfig or a callable"
        )
    if callable(spec):
        return Custom(spec)
    raise TypeError(f"features: expected a name, FeatureConfig or callable, not {spec!r}")
