"""GradNAP profiles: sensitivities, alignment, streaming accumulation, results."""

from gradnap.profiling.accumulate import ProfileAccumulator
from gradnap.profiling.driver import profiles
from gradnap.profiling.groupings import (
    GROUPINGS,
    Correct,
    FrameGrouping,
    Grapheme,
    Grouping,
    Manner,
    Phoneme,
    Speaker,
    Target,
    Token,
    Word,
)
from gradnap.profiling.layout import Layer, LayoutError
from gradnap.profiling.method import NAP, VARIANTS, GradNAP, NAvAI, Saliency, Sum, Variant
from gradnap.profiling.result import load_profiles, save_profiles, to_table
from gradnap.profiling.run import Profiler
from gradnap.profiling.sensitivity import sensitivities, sensitivity_batches
from gradnap.profiling.spec import ModelSpec
from gradnap.profiling.stack import ConvStack
from gradnap.profiling.token_profile import TokenProfiler

__all__ = [
    "GROUPINGS",
    "NAP",
    "VARIANTS",
    "ConvStack",
    "Correct",
    "FrameGrouping",
    "GradNAP",
    "Grapheme",
    "Grouping",
    "Manner",
    "NAvAI",
    "Phoneme",
    "Saliency",
    "Speaker",
    "Sum",
    "Target",
    "Token",
    "TokenProfiler",
    "Variant",
    "Word",
    "Layer",
    "LayoutError",
    "ModelSpec",
    "ProfileAccumulator",
    "Profiler",
    "load_profiles",
    "profiles",
    "save_profiles",
    "sensitivities",
    "sensitivity_batches",
    "to_table",
]
