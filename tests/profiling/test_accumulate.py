"""The per-utterance window sums against a plain per-event loop."""

import pytest
import torch

from gradnap.profiling.windows import sorted_window_sums, window_starts, window_sums


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
        got = window_sums(full, *window_starts(first, width, full.shape[1], membership), width)
        assert got.dtype == torch.float64 and got.shape == want.shape
        assert torch.allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dense", [False, True])
def test_sorted_window_sums_in_chunks_equal_a_per_event_loop(dense):
    full, first, membership = case(dense)
    for width in (1, 6, 7):
        crops = naive_windows(full, first, width).sort(dim=-1).values
        want = torch.einsum("ge,eck->gck", membership, crops)
        starts = window_starts(first, width, full.shape[1], membership)
        got = sorted_window_sums(full, *starts, width, chunk=3)
        assert torch.allclose(got, want, rtol=0, atol=1e-12)


def test_accumulator_sums_each_kind_like_a_per_event_loop():
    """Every kind of sum a variant can ask for, over batches of one utterance, against
    plain per-event crops; with two utterances and a neuron subset."""
    from gradnap.profiling.accumulate import ProfileAccumulator
    from gradnap.profiling.align import Crops
    from gradnap.profiling.method import Sum

    torch.manual_seed(1)
    sums = [Sum(k, a) for k in ("activation", "sorted", "gradient", "saliency")
            for a in ("activation_gradient", "gradient")]  # fmt: skip
    acc = ProfileAccumulator(sums, neurons={"l": [0, 2]})
    want = {s.key: torch.zeros(3, 2, 4, dtype=torch.float64) for s in sums}
    labels = [["a"], ["b"], ["a", "b"], [], ["b"]]
    index = {"a": 0, "b": 1}
    for utt in range(2):
        full = torch.randn(3, 9)
        first = {"activation_gradient": torch.tensor([-2, 0, 3, 3, 7]),
                 "gradient": torch.tensor([1, 0, 6, 3, 8])}  # fmt: skip
        grads = {a: torch.randn(5, 3, 4) for a in first}
        for part in (slice(0, 2), slice(2, 5)):  # two batches of one utterance
            crops = Crops(full, 4, {a: f[part] for a, f in first.items()},
                          {a: g[part] for a, g in grads.items()})  # fmt: skip
            acc.update({"l": crops}, labels[part], utterance=utt)
        for s in sums:
            a_crop = naive_windows(full, first[s.align], 4)[:, [0, 2]]
            g_crop = grads[s.align][:, [0, 2]].double()
            per_event = {
                "activation": a_crop,
                "sorted": a_crop.sort(-1).values,
                "gradient": g_crop,
                "saliency": (a_crop * g_crop).abs(),
            }[s.kind]
            for e, names in enumerate(labels):
                for name in names:
                    want[s.key][index[name]] += per_event[e]
                want[s.key][2] += per_event[e]
    group, total = acc.means("l")
    counts = torch.tensor([4.0, 6.0], dtype=torch.float64)[:, None, None]
    assert acc.groups_ == ["a", "b"] and acc.counts_.tolist() == [4, 6]
    for s in sums:
        assert torch.allclose(group[s.key], want[s.key][:2] / counts, atol=1e-12)
        assert torch.allclose(total[s.key], want[s.key][2] / 10, atol=1e-12)
