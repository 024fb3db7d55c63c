"""Bad settings are one clear error before any work."""

import pytest
import torch

from gradnap.options import (
    check_device,
    check_groupings,
    check_profile_options,
    positive_int,
    set_threads,
)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"device": "tpu"}, "--device tpu: use cpu, cuda or cuda:N"),
        ({"batch_events": 0}, "--batch-events must be a positive whole number or auto, not 0"),
        ({"batch_events": "-5"}, "--batch-events must be a positive whole number"),
        ({"crop_width": 0}, "--crop-width must be a positive whole number or support"),
        ({"crop_width": {"conv1": -1}}, "--crop-width must be"),
        ({"limit": 0}, "--limit must be a positive whole number, not 0"),
        ({"limit": -1}, "--limit must be"),
        ({"group_by": []}, "--group-by: give at least one grouping"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        check_profile_options(**kwargs)


def test_good_settings():
    check_profile_options(["grapheme", "word"], "auto", "receptive_field", "cpu", 3)
    check_profile_options(batch_events="64", crop_width={"conv1": 5, "conv2": "support"})
    assert check_device("cpu") == "cpu" and check_groupings(["target"]) == ("target",)
    assert positive_int("7", "--x") == 7 and positive_int("auto", "--x", ("auto",)) == "auto"
    for bad in (True, 1.5, "1.5", None, "abc"):
        with pytest.raises(ValueError):
            positive_int(bad, "--x")


def test_threads():
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 == torch.get_num_threads()
        assert set_threads(0) >= 1
        with pytest.raises(ValueError, match="--threads must be 0"):
            set_threads(-2)
    finally:
        torch.set_num_threads(before)
