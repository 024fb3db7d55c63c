"""Figures of profiles and analyses (matplotlib, Agg); each also saved as PNG and SVG."""

from gradnap.viz.figures import (
    action_potentials,
    dendrogram,
    input_profiles,
    optimal_input_figure,
    save_figure,
    silhouette_plot,
)

__all__ = [
    "action_potentials",
    "dendrogram",
    "input_profiles",
    "optimal_input_figure",
    "save_figure",
    "silhouette_plot",
]
