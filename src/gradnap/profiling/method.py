"""The GradNAP equations of METHOD.md ("Profile", "Baselines", "Responsiveness") and the
profile variants built on them.

A variant is one object (as a CAM method in pytorch-grad-cam overrides one method of
``BaseCAM``): the window sums it needs (:class:`Sum`: which quantity, aligned by which
rule) and how it combines the group and data-set means of those sums into its profile
(:meth:`Variant.profile`). Everything else (alignment, accumulation, the result, the
distributed reduction, the sanity check, the report) loops over the variants it is given.

Sums come in four kinds, each under one alignment rule (:data:`ALIGNMENTS`):

- ``activation``: the activation window (X for the input) around the alignment point;
- ``sorted``: that window sorted along time, ascending (summed per utterance; rank 0 is
  the smallest value, so a variant that wants descending order flips the last axis);
- ``gradient``: the event's gradient window ``G``;
- ``saliency``: ``|A * G|`` of the event, per neuron and offset.

All means are ``(groups, C, W)`` over groups or ``(C, W)`` over every event of the run,
C neurons (mel bins for the input) and W time offsets (or ranks).

To add a variant, subclass :class:`Variant`, set ``name``, return its sums from
:meth:`Variant.sums` and its variables from :meth:`Variant.profile`, and register the class
in :data:`VARIANTS`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

KINDS = ("activation", "sorted", "gradient", "saliency")
# alignment rules, "argmax_tau" of a score over the layer's frames (the input is always
# aligned on sum_f |G|: zeros in a z-normalized spectrogram are not silence)
ALIGNMENTS = ("activation_gradient", "gradient")  # sum_c |A * G|, sum_c |G|
MASK_SCALES = ("window", "neuron")

GND = ("group", "neuron", "offset")
GNR = ("group", "neuron", "rank")


@dataclass(frozen=True)
class Sum:
    """One window sum a variant needs: ``kind`` (one of :data:`KINDS`) of the crops
    aligned by rule ``align`` (one of :data:`ALIGNMENTS`)."""

    kind: str
    align: str = "activation_gradient"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown sum kind {self.kind!r}; kinds are {KINDS}")
        if self.align not in ALIGNMENTS:
            raise ValueError(f"unknown alignment {self.align!r}; alignments are {ALIGNMENTS}")

    @property
    def key(self) -> str:
        """Its name in the accumulator's state (``"activation@activation_gradient"``)."""
        return f"{self.kind}@{self.align}"


def mask(mean_gradient: torch.Tensor, scale: str = "window") -> torch.Tensor:
    """``M[g] = |mean_G[g]| / max |mean_G[g]|``, the max over the whole C x W window
    (``scale="window"``, the default **[choice]**) or over each neuron's row
    (``scale="neuron"``); zero stays zero, an all-zero gradient gives an all-zero mask."""
    if scale not in MASK_SCALES:
        raise ValueError(f"mask_scale must be one of {MASK_SCALES}, not {scale!r}")
    magnitude = mean_gradient.abs()
    dims = (-2, -1) if scale == "window" else (-1,)
    peak = magnitude.amax(dim=dims, keepdim=True)
    return torch.where(peak > 0, magnitude / torch.where(peak > 0, peak, 1), 0)


def gradnap(mean_activation, mean_activation_all, mean_gradient, scale="window") -> torch.Tensor:
    """``GradNAP[g] = (mean_A[g] - mean_A[all]) * M[g]``."""
    return (mean_activation - mean_activation_all) * mask(mean_gradient, scale)


def navai(mean_navai, mean_navai_all) -> torch.Tensor:
    """NAvAI: gradient-aligned average minus the data set average; no mask."""
    return mean_navai - mean_navai_all


def nap(mean_sorted, mean_sorted_all) -> torch.Tensor:
    """NAP: average of time-sorted activations minus the data set average; no mask."""
    return mean_sorted - mean_sorted_all


def responsiveness(profile: torch.Tensor) -> torch.Tensor:
    """``r_n = sign(sum_tau P[n, tau]) * sum_tau |P[n, tau]|`` over the last axis."""
    return torch.sign(profile.sum(-1)) * profile.abs().sum(-1)


class Variant:
    """A profile variant: the sums it needs and how its profile is made from their means.

    ``name`` is also the name of its profile variable in the result. Subclasses override
    :meth:`sums` and :meth:`profile`; parameters are stored by the constructor.
    """

    name = ""

    def sums(self) -> tuple[Sum, ...]:
        """The window sums this variant needs."""
        raise NotImplementedError

    def profile(
        self, group: dict[str, torch.Tensor], total: dict[str, torch.Tensor]
    ) -> dict[str, tuple[tuple[str, ...], torch.Tensor]]:
        """Result variables ``name -> (dims, values)`` from the group means ``group[key]``
        ``(groups, C, W)`` and the all-event means ``total[key]`` ``(C, W)``, keyed by
        :attr:`Sum.key`. The first is the profile itself (called :attr:`name`)."""
        raise NotImplementedError

    @property
    def aligned(self) -> bool:
        """Whether the profile's last axis is a time offset (False: a rank)."""
        return True

    def describe(self) -> dict:
        """Its parameters, for the run's configuration."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items())
        return f"{type(self).__name__}({args})"


class GradNAP(Variant):
    """``(mean_A[g] - mean_A[all]) * |mean_G[g]| / max |mean_G[g]|``, aligned on
    ``sum_c |A * G|``; ``mask_scale``: the mask's max over the whole window or per
    neuron **[choice]**."""

    name = "gradnap"

    def __init__(self, mask_scale: str = "window"):
        self.mask_scale = mask_scale

    def sums(self):
        return (Sum("activation"), Sum("gradient"))

    def profile(self, group, total):
        key = "activation@activation_gradient"
        a, a_all, g = group[key], total[key], group["gradient@activation_gradient"]
        m = mask(g, self.mask_scale)
        return {
            "gradnap": (GND, (a - a_all) * m),
            "mean_activation": (GND, a),
            "mean_gradient": (GND, g),
            "mask": (GND, m),
            "mean_activation_all": (("neuron", "offset"), a_all),
        }


class NAvAI(Variant):
    """``mean_A[g] - mean_A[all]`` of windows aligned on the gradient alone
    (``align="gradient"``: ``sum_c |G|``, the default **[choice]** for hidden layers) or on
    GradNAP's ``sum_c |A * G|`` (``align="activation_gradient"``); no mask."""

    name = "navai"

    def __init__(self, align: str = "gradient"):
        self.align = align

    def sums(self):
        return (Sum("activation", self.align),)

    def profile(self, group, total):
        key = Sum("activation", self.align).key
        return {"navai": (GND, navai(group[key], total[key]))}


class NAP(Variant):
    """Activations of GradNAP's window sorted along time, descending, averaged, minus the
    data-set average; no mask. Its last axis is a rank."""

    name = "nap"

    def sums(self):
        return (Sum("sorted"),)

    @property
    def aligned(self):
        return False

    def profile(self, group, total):
        key = "sorted@activation_gradient"  # summed ascending: rank 0 is the largest
        return {"nap": (GNR, nap(group[key], total[key]).flip(-1))}


class Saliency(Variant):
    """Saliency-adjusted GradNAP (an additional variant, not in the paper):
    ``(mean_A[g] - mean_A[all]) * S[g] / max S[g]`` with ``S[g]`` the group mean of
    ``|A * G|`` per neuron and offset (the saliency of each neuron at each time) instead
    of GradNAP's ``|mean_G[g]|``: a neuron that is active where the logit depends on it
    counts, whatever the sign of its gradient in each event. Aligned like GradNAP."""

    name = "saliency"

    def __init__(self, mask_scale: str = "window"):
        self.mask_scale = mask_scale

    def sums(self):
        return (Sum("activation"), Sum("saliency"))

    def profile(self, group, total):
        key = "activation@activation_gradient"
        a, a_all, s = group[key], total[key], group["saliency@activation_gradient"]
        m = mask(s, self.mask_scale)
        return {
            "saliency": (GND, (a - a_all) * m),
            "mean_saliency": (GND, s),
            "saliency_mask": (GND, m),
            "mean_activation": (GND, a),
            "mean_activation_all": (("neuron", "offset"), a_all),
        }


VARIANTS: dict[str, type[Variant]] = {
    "gradnap": GradNAP,
    "navai": NAvAI,
    "nap": NAP,
    "saliency": Saliency,
}
DEFAULT_VARIANTS = ("gradnap", "navai", "nap")


def make_variants(variants=DEFAULT_VARIANTS, **choices) -> tuple[Variant, ...]:
    """Variant objects from names (or objects, kept as they are). ``choices`` go to the
    variants that take them: ``mask_scale`` (GradNAP's and the masked variants'),
    ``navai_align`` (NAvAI's ``align``)."""
    if isinstance(variants, str):
        variants = [v.strip() for v in variants.split(",") if v.strip()]
    out = []
    for v in variants:
        if isinstance(v, Variant):
            out.append(v)
            continue
        if v not in VARIANTS:
            raise ValueError(f"unknown variant {v!r}; variants are {tuple(VARIANTS)}")
        cls = VARIANTS[v]
        params = inspect.signature(cls).parameters
        given = {"align": choices.get("navai_align"), "mask_scale": choices.get("mask_scale")}
        out.append(cls(**{k: given[k] for k in params if given.get(k) is not None}))
    names = [v.name for v in out]
    if not out or len(set(names)) != len(names):
        raise ValueError(f"give at least one variant, each once (got {names})")
    return tuple(out)


def needed_sums(variants) -> tuple[Sum, ...]:
    """The distinct sums a set of variants needs, in a fixed order."""
    return tuple(dict.fromkeys(s for v in variants for s in v.sums()))
