"""Figures: stable names, PNG and SVG, the Hz axis and the colour scale centred on zero."""

import numpy as np
import pytest

from gradnap.analysis import representation_power
from gradnap.viz import (
    action_potentials,
    dendrogram,
    input_profiles,
    save_figure,
    silhouette_plot,
)
from tests.report.conftest import small_result  # noqa: F401


def test_input_profiles_axes_and_files(small_result, tmp_path):  # noqa: F811
    _, tree = small_result
    ds = tree["input"].to_dataset()
    fig = input_profiles(ds, ["phoneme:AA", "phoneme:T"])
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"][:4]
    assert len(axes) == 4
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert "1k" in labels and "4k" in labels
    im = axes[1].images[0]
    lo, hi = im.get_clim()
    assert lo == pytest.approx(-hi) and hi > 0  # centred on zero
    assert axes[0].get_xlabel() == "time offset (ms)"
    paths = save_figure(fig, tmp_path, "fig2")
    assert [p.name for p in paths] == ["fig2.png", "fig2.svg"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and b"<svg" in paths[1].read_bytes()[:400]
    assert not list(tmp_path.glob(".*part*"))


def test_action_potentials_highlight_top_five(small_result):  # noqa: F811
    _, tree = small_result
    ds = tree["conv2"].to_dataset()
    fig = action_potentials(ds, "phoneme:AA")
    ax = fig.axes[0]
    grey = [ln for ln in ax.lines if ln.get_color() == "0.7"]
    coloured = [ln for ln in ax.lines if ln.get_label().startswith("neuron")]
    assert len(grey) == ds.sizes["neuron"] and len(coloured) == 5


def test_silhouette_plot_and_dendrogram(small_result):  # noqa: F811
    _, tree = small_result
    power = representation_power(tree, min_count=1)
    fig = silhouette_plot(power)
    assert len(fig.axes[0].patches) == 2 * power.sizes["layer"]
    fig = dendrogram(tree, "conv3", "phoneme", 75, min_count=1)
    assert "clusters at the 75th percentile" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="fewer than 3"):
        dendrogram(tree, "conv3", "phoneme", 75, min_count=10**9)
    assert np.isfinite(power["threshold"].sel(grouping="phoneme").values).all()
