"""Acoustic models and their geometry."""

from gradnap.models.geometry import ConvSpec, StackGeometry
from gradnap.models.wav2letter import PRESETS, Wav2Letter, Wav2LetterConfig

__all__ = ["PRESETS", "ConvSpec", "StackGeometry", "Wav2Letter", "Wav2LetterConfig"]
