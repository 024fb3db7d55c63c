"""Events: output frames in time spans, per-frame labels, the CTC forced alignment."""

import pytest
import torch

from gradnap.profiling.events import ctc_forced_alignment, frame_labels, span_frames


def test_span_frames_use_the_frame_centre():
    # output frames every 20 ms: frame t is centred at 20 t ms
    assert list(span_frames(0.0, 0.05, 0.02, 100)) == [0, 1, 2]
    assert list(span_frames(0.04, 0.06, 0.02, 100)) == [2]  # a boundary on a centre: later span
    assert list(span_frames(0.041, 0.059, 0.02, 100)) == []
    assert list(span_frames(1.9, 5.0, 0.02, 100)) == list(range(95, 100))
    labels = frame_labels([("sil", 0.0, 0.03), ("AH", 0.03, 0.09)], 0.02, 6)
    assert labels == ["sil", "sil", "AH", "AH", "AH", None]


def test_ctc_forced_alignment():
    lp = torch.full((6, 3), -10.0)
    for t, k in enumerate([1, 1, 0, 1, 2, 0]):
        lp[t, k] = 0.0
    assert ctc_forced_alignment(lp, [1, 1, 2]) == [1, 1, 0, 1, 2, 0]
    # forced: the target wins where the model disagrees
    assert ctc_forced_alignment(lp, [2]).count(2) >= 1
    with pytest.raises(ValueError, match="too few"):
        ctc_forced_alignment(lp[:2], [1, 1, 1])
