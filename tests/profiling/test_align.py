"""Alignment rules and aligned crops, worked out by hand."""

import torch

from gradnap.profiling.align import Crops, align, offsets
from gradnap.profiling.sensitivity import Window


def case():
    # one layer, 2 neurons x 6 frames; one event whose gradient window starts at frame 1
    full = torch.tensor([[0.0, 1, 4, 0, 2, 0], [0.0, -1, 0, 0, 1, 0]])
    g = torch.tensor([[[3.0, 0.5, 1.0, 0.0], [0.0, 0.5, -1.0, 0.0]]])  # frames 1..4
    return full, Window(g, torch.tensor([1]))


def test_rules_by_hand():
    full, grad = case()
    # sum_c |G| over frames 1..4: 3, 1, 2, 0 -> frame 1
    # sum_c |A*G|: |1*3|+|-1*0| = 3, |4*.5|+0 = 2, |0*1|+|0*-1| = 0, 0 -> frame 1 too;
    # change frame 2's activation so that |A*G| peaks there: 8 * .5 = 4 > 3
    full[0, 2] = 8.0
    c = align(full, grad, 3, False, rules=("activation_gradient", "gradient"))
    assert isinstance(c, Crops) and c.width == 3
    assert c.tau("activation_gradient").tolist() == [2]
    assert c.tau("gradient").tolist() == [1]
    assert c.first["activation_gradient"].tolist() == [1]  # tau - width // 2
    # the gradient crop around frame 2: frames 1, 2, 3
    assert c.gradient["activation_gradient"].tolist() == [[[3.0, 0.5, 1.0], [0.0, 0.5, -1.0]]]
    # |A * G| of that crop
    assert c.saliency("activation_gradient").tolist() == [[[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]]
    assert c.saliency("activation_gradient", keep=[1]).tolist() == [[[0.0, 0.0, 0.0]]]


def test_the_input_is_aligned_on_the_gradient_under_both_rules():
    full, grad = case()
    full[0, 2] = 8.0
    c = align(full, grad, 3, True, rules=("activation_gradient", "gradient"))
    assert c.tau("activation_gradient").tolist() == c.tau("gradient").tolist() == [1]


def test_crops_are_zero_outside_the_support_and_the_utterance():
    full, grad = case()
    c = align(full, grad, 5, False, gradients=("gradient",))
    # tau = 1, crop frames -1..3: frame -1 outside the utterance, frame 0 outside the support
    assert c.gradient["gradient"][0, 0].tolist() == [0.0, 0.0, 3.0, 0.5, 1.0]
    assert offsets(5).tolist() == [-2, -1, 0, 1, 2]
    assert offsets(4).tolist() == [-2, -1, 0, 1]


def test_ties_go_to_the_earliest_frame():
    full = torch.ones(1, 4)
    c = align(full, Window(torch.ones(1, 1, 4), torch.tensor([0])), 1, False)
    assert c.tau().tolist() == [0]


def test_sort_ascending_matches_torch():
    from gradnap.profiling.align import sort_ascending_

    x = torch.randn(5, 7, 33)
    x[0, 0, :5] = 0.0
    expected = x.sort(dim=-1).values
    assert torch.equal(sort_ascending_(x.clone()), expected)
    assert torch.equal(sort_ascending_(x.permute(0, 2, 1).clone().permute(0, 2, 1)), expected)


def test_sort_ascending_in_parts_on_threads(monkeypatch):
    """Large arrays are sorted in row blocks on torch.get_num_threads() threads."""
    from gradnap.profiling.align import sort_ascending_

    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    x = torch.randn(20000, 2, 9)
    x[::7, :, :4] = 0.0
    assert torch.equal(sort_ascending_(x.clone()), x.sort(dim=-1).values)
