"""Building the result from accumulated sums: group order, coordinates, the variants'
variables, configuration."""

import torch

from gradnap.profiling.accumulate import ProfileAccumulator
from gradnap.profiling.align import Crops
from gradnap.profiling.result import build_tree, config_of


def test_result_by_hand():
    # one neuron, 4 frames; two events of width 3 starting at frames 0 and 1
    full = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    first = {"activation_gradient": torch.tensor([0, 1]), "gradient": torch.tensor([0, 1])}
    grad = torch.tensor([[[0.0, 1.0, 0.0]], [[0.0, -2.0, 1.0]]])
    crops = Crops(full, 3, first, {"activation_gradient": grad})
    acc = ProfileAccumulator().update({"l": crops}, [["speaker:s1"], ["speaker:s1", "phoneme:AE"]])
    tree = build_tree(acc, {"l": {"frame_ms": 20.0}}, {"run": 1}, variants=["gradnap", "nap"])
    # groups sorted by name whatever order they came in; grouping and label beside them
    assert tree["group"].values.tolist() == ["phoneme:AE", "speaker:s1"]
    assert tree["grouping"].values.tolist() == ["phoneme", "speaker"]
    assert tree["label"].values.tolist() == ["AE", "s1"]
    assert tree["count"].values.tolist() == [1, 2]
    ds = tree["l"].to_dataset()
    assert ds.attrs["profiles"] == "gradnap,nap" and "navai" not in ds
    assert ds["offset_ms"].values.tolist() == [-20.0, 0.0, 20.0]
    # crops [1, 2, 3] and [2, 3, 4]; all: [1.5, 2.5, 3.5]; AE = the second event
    assert ds["mean_activation_all"].values[0].tolist() == [1.5, 2.5, 3.5]
    assert ds["mean_gradient"].sel(group="phoneme:AE").values[0].tolist() == [0, -2, 1]
    # AE: (A - A_all) * |G| / max|G| = [.5, .5, .5] * [0, 1, .5]
    assert ds["gradnap"].sel(group="phoneme:AE").values[0].tolist() == [0, 0.5, 0.25]
    # s1: mean G [0, -.5, .5] -> mask [0, 1, 1]; A - A_all = 0
    assert ds["gradnap"].sel(group="speaker:s1").values[0].tolist() == [0, 0, 0]
    # NAP: sorted descending, AE [4, 3, 2] - all [3.5, 2.5, 1.5]
    assert ds["nap"].sel(group="phoneme:AE").values[0].tolist() == [0.5, 0.5, 0.5]
    assert config_of(tree) == {"run": 1}
