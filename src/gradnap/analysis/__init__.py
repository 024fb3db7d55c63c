"""Analyses of profiles (METHOD.md "Responsiveness and feature visualization",
"Representation power"), formants read off input-layer profiles, the model-randomization
sanity check, and listening to a neuron's top events."""

from gradnap.analysis.clustering import PERCENTILES, cluster_groups, representation_power
from gradnap.analysis.dynamics import settling, silhouette_over_training
from gradnap.analysis.featurevis import (
    Objective,
    l1,
    l2,
    neurons,
    optimal_input,
    sonify,
    visualize_group,
)
from gradnap.analysis.formants import formants
from gradnap.analysis.listen import Clip, Listener, Listening, listen
from gradnap.analysis.responsiveness import responsiveness, top_neurons
from gradnap.analysis.sanity import cascading_randomization

__all__ = [
    "PERCENTILES",
    "Clip",
    "Listener",
    "Listening",
    "Objective",
    "cascading_randomization",
    "cluster_groups",
    "formants",
    "l1",
    "l2",
    "listen",
    "neurons",
    "optimal_input",
    "representation_power",
    "responsiveness",
    "settling",
    "silhouette_over_training",
    "sonify",
    "top_neurons",
    "visualize_group",
]
