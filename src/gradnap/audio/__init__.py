"""Audio input: reading files and turning waveforms into the model's log-mel features."""

from gradnap.audio.features import FeatureConfig, FeatureStats, features
from gradnap.audio.io import AudioError, load_audio

__all__ = ["AudioError", "FeatureConfig", "FeatureStats", "features", "load_audio"]
