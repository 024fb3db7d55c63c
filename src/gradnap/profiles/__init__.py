"""GradNAP profiles: sensitivities, alignment, streaming accumulation, results."""

from gradnap.profiles.accumulate import ProfileAccumulator
from gradnap.profiles.result import load_profiles, save_profiles, to_table
from gradnap.profiles.run import Profiler, profiles
from gradnap.profiles.spec import ModelSpec
from gradnap.profiles.stack import ConvStack

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
