"""gradnap: Gradient-adjusted Neuron Activation Profiles for speech recognition models.

>>> import gradnap
>>> model = gradnap.Wav2Letter.from_preset("small")
>>> x = gradnap.features(wav, 16000)            # doctest: +SKIP
"""

from gradnap import models
from gradnap._version import __version__
from gradnap.audio import FeatureConfig, FeatureStats, features, load_audio
from gradnap.data import Alphabet, Corpus, CorpusError, Utterance, read_corpus
from gradnap.decode import BeamSearchDecoder, error_rates, greedy_decode
from gradnap.models import Wav2Letter, Wav2LetterConfig
from gradnap.models.checkpoint import CheckpointError, load, save_checkpoint
from gradnap.profiling import (
    Layer,
    ModelSpec,
    ProfileAccumulator,
    Profiler,
    load_profiles,
    profiles,
    save_profiles,
    sensitivities,
    sensitivity_batches,
    to_table,
)

__all__ = [
    "Alphabet",
    "BeamSearchDecoder",
    "CheckpointError",
    "Corpus",
    "ModelSpec",
    "ProfileAccumulator",
    "Profiler",
    "CorpusError",
    "FeatureConfig",
    "FeatureStats",
    "Layer",
    "Utterance",
    "Wav2Letter",
    "Wav2LetterConfig",
    "__version__",
    "error_rates",
    "features",
    "greedy_decode",
    "load",
    "load_audio",
    "load_profiles",
    "profiles",
    "save_profiles",
    "to_table",
    "models",
    "read_corpus",
    "save_checkpoint",
    "sensitivities",
    "sensitivity_batches",
]
