"""GradNAP profiles: sensitivities, alignment, streaming accumulation, results."""

from gradnap.profiling.accumulate import ProfileAccumulator
from gradnap.profiling.driver import profiles
from gradnap.profiling.layout import Layer, LayoutError
from gradnap.profiling.result import load_profiles, save_profiles, to_table
from gradnap.profiling.run import Profiler
from gradnap.profiling.sensitivity import sensitivities
from gradnap.profiling.spec import ModelSpec
from gradnap.profiling.stack import ConvStack

__all__ = [
    "ConvStack",
    "Layer",
    "LayoutError",
    "ModelSpec",
    "ProfileAccumulator",
    "Profiler",
    "load_profiles",
    "profiles",
    "save_profiles",
    "sensitivities",
    "to_table",
]
