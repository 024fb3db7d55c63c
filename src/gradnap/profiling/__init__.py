"""GradNAP profiles: sensitivities, alignment, streaming accumulation, results."""

from gradnap.profiling.accumulate import ProfileAccumulator
from gradnap.profiling.driver import profiles
from gradnap.profiling.result import load_profiles, save_profiles, to_table
from gradnap.profiling.run import Profiler
from gradnap.profiling.spec import ModelSpec
from gradnap.profiling.stack import ConvStack

__all__ = [
    "ConvStack",
    "ModelSpec",
    "ProfileAccumulator",
    "Profiler",
    "load_profiles",
    "profiles",
    "save_profiles",
    "to_table",
]
