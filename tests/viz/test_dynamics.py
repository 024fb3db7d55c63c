"""Figures over training: axes, units and colour scales, on the hand-made trajectory."""

import numpy as np

from gradnap.analysis.dynamics import settling, silhouette_over_training
from gradnap.viz import save_figure
from gradnap.viz.dynamics import profile_over_training, settling_heatmap, silhouette_heatmaps
from tests.analysis.test_dynamics import STEPS, hand_made


def test_figures_over_training(tmp_path):
    traj = hand_made()
    fig = settling_heatmap(settling(traj), "phoneme")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B", "C", "D", "E"]
    assert fig.axes[1].get_ylabel() == "training step (log scale)"  # the colour bar
    assert np.ma.is_masked(ax.images[0].get_array()[3, 0])  # D never settles: grey
    ds = traj["conv1"].to_dataset().assign_coords(dev_cer=traj["dev_cer"])
    fig = profile_over_training(ds, "phoneme:C", limit_ms=None)
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert titles[0] == "step 10, CER 90 %, n=0 (no events)" and "step 5000" in titles[-1]
    panel = next(a for a in fig.axes if a.images)
    lo, hi = panel.images[0].get_clim()
    assert lo == -hi and panel.get_xlabel() == "time offset (ms)"
    paths = save_figure(fig, tmp_path, "small_multiples")
    assert [p.suffix for p in paths] == [".png", ".svg"]


def test_silhouette_heatmaps_have_a_difference_panel():
    traj = hand_made()
    sil = silhouette_over_training(traj, ("phoneme", "phoneme"), min_count=1)
    fig = silhouette_heatmaps(sil.assign_coords(grouping=["grapheme", "phoneme"]))
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert titles == ["graphemes", "phonemes", "phonemes minus graphemes"]
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels[0] == f"{STEPS[0]}\n90 %"
