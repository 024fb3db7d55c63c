"""The GradNAP equations of METHOD.md ("Profile", "Baselines", "Responsiveness"), on means.

All inputs are means over events (see :mod:`gradnap.profiling.accumulate`); shapes are
``(..., C, W)`` with C neurons (mel bins for the input) and W time offsets (or ranks).
"""

from __future__ import annotations

import torch


def mask(mean_gradient: torch.Tensor) -> torch.Tensor:
    """``M[g] = |mean_G[g]| / max |mean_G[g]|`` over the whole C x W window **[choice]**;
    an all-zero gradient gives an all-zero mask."""
    magnitude = mean_gradient.abs()
    peak = magnitude.amax(dim=(-2, -1), keepdim=True)
    return torch.where(peak > 0, magnitude / torch.where(peak > 0, peak, 1), 0)


def gradnap(mean_activation, mean_activation_all, mean_gradient) -> torch.Tensor:
    """``GradNAP[g] = (mean_A[g] - mean_A[all]) * M[g]``."""
    return (mean_activation - mean_activation_all) * mask(mean_gradient)


def navai(mean_navai, mean_navai_all) -> torch.Tensor:
    """NAvAI: gradient-aligned average minus the data set average; no mask."""
    return mean_navai - mean_navai_all


def nap(mean_sorted, mean_sorted_all) -> torch.Tensor:
    """NAP: average of time-sorted activations minus the data set average; no mask."""
    return mean_sorted - mean_sorted_all


def responsiveness(profile: torch.Tensor) -> torch.Tensor:
    """``r_n = sign(sum_tau P[n, tau]) * sum_tau |P[n, tau]|`` over the last axis."""
    return torch.sign(profile.sum(-1)) * profile.abs().sum(-1)
