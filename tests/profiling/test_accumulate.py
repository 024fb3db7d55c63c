"""The per-utterance window sums against a plain per-event loop."""

import pytest
import torch

from gradnap.profiling.accumulate import _sorted_window_sums, _starts, _window_sums


def naive_windows(full, first, width):
    c, t = full.shape
    out = torch.zeros(len(first), c, width, dtype=torch.float64)
    for e, f in enumerate(first.tolist()):
        for k in range(width):
            if 0 <= f + k < t:
                out[e, :, k] = full[:, f + k].double()
    return out


def case(dense, channels=5):
    """Windows inside, over both edges, wholly outside, and repeated starts; few distinct
    starts against the frames or a start at nearly every frame. Few channels x starts take
    the gathered-windows branch, 2000 channels the per-offset products (sparse or dense)."""
    torch.manual_seed(0)
    if dense:
        full = torch.randn(channels, 9)
        first = torch.arange(-8, 12).repeat(2)
    else:
        full = torch.randn(channels, 23)
        first = torch.tensor([-9, -3, 0, 4, 4, 4, 10, 17, 20, 25, 3])
    membership = (torch.rand(4, len(first)) < 0.5).double()
    membership[-1] = 1
    return full, first, membership


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("channels", [5, 2000])
def test_window_sums_equal_a_per_event_loop(dense, channels):
    full, first, membership = case(dense, channels)
    for width in (1, 6, 7):
        want = torch.einsum("ge,eck->gck", membership, naive_windows(full, first, width))
        got = _window_sums(full, *_starts(first, width, full.shape[1], membership), width)
        assert got.dtype == torch.float64 and got.shape == want.shape
        assert torch.allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dense", [False, True])
def test_sorted_window_sums_in_chunks_equal_a_per_event_loop(dense):
    full, first, membership = case(dense)
    for width in (1, 6, 7):
        crops = naive_windows(full, first, width).sort(dim=-1).values
        want = torch.einsum("ge,eck->gck", membership, crops)
        starts = _starts(first, width, full.shape[1], membership)
        got = _sorted_window_sums(full, *starts, width, chunk=3)
        assert torch.allclose(got, want, rtol=0, atol=1e-12)
