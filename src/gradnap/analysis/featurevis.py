"""Feature visualization by input optimization (METHOD.md "Responsiveness and feature
visualization").

An objective is a small composable object, as in lucid/lucent: objectives add, subtract
and scale, and are called on the optimization state (the input ``x`` and the layers'
pre-activations ``z``). The default objective for a group in a layer is

    neurons(layer, top5, signs(r_n)) - l1(w1 / RF_l) - l2(w2 / sqrt(RF_l))

maximized with Adam from ``X* ~ N(0, 1)`` of the layer's receptive-field length.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import xarray as xr

from gradnap.analysis.responsiveness import top_neurons
from gradnap.profiling.spec import ModelSpec


class Objective:
    """A scalar function of the optimization state ``{"x": X, "z": {layer: Z_l}}``.

    ``a + b``, ``a - b``, ``2 * a`` and ``-a`` are objectives too.
    """

    def __init__(self, fn: Callable[[dict], torch.Tensor], name: str, layers=()):
        self.fn, self.name, self.layers = fn, name, tuple(layers)

    def __call__(self, state: dict) -> torch.Tensor:
        return self.fn(state)

    def __add__(self, other: Objective) -> Objective:
        return Objective(
            lambda s: self(s) + other(s), f"{self.name} + {other.name}", self.layers + other.layers
        )

    def __neg__(self) -> Objective:
        return Objective(lambda s: -self(s), f"-{self.name}", self.layers)

    def __sub__(self, other: Objective) -> Objective:
        return self + (-other)

    def __mul__(self, k: float) -> Objective:
        return Objective(lambda s: k * self(s), f"{k:g} * {self.name}", self.layers)

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def neurons(layer: str, indices, signs=None, t: int | None = None) -> Objective:
    """``sum_n sign_n * Z_l[n, t*]``: the joint pre-activation of neurons at one time point
    (``t``; default the central frame of the layer's output)."""
    idx = torch.as_tensor(list(indices), dtype=torch.long)
    sg = (
        torch.ones(len(idx))
        if signs is None
        else torch.as_tensor(np.sign(signs), dtype=torch.float32)
    )

    def fn(state):
        z = state["z"][layer][0]
        at = z.shape[1] // 2 if t is None else t
        return (sg.to(z.device) * z[idx.to(z.device), at]).sum()

    return Objective(fn, f"neurons({layer}, {idx.tolist()})", [layer])


def l1(weight: float = 1.0) -> Objective:
    """``weight * sum |X|``."""
    return Objective(lambda s: weight * s["x"].abs().sum(), f"{weight:g}*L1")


def l2(weight: float = 1.0) -> Objective:
    """``weight * ||X||_2``."""
    return Objective(lambda s: weight * s["x"].norm(), f"{weight:g}*L2")


def preactivations(spec: ModelSpec, x: torch.Tensor, upto: str) -> dict[str, torch.Tensor]:
    """``Z_l`` (before the activation) of every layer up to ``upto`` for ``x`` ``(1, F, T)``,
    with the stack's own padding."""
    if spec.stack is None:
        raise ValueError("feature visualization needs a stack of Conv1d layers (ModelSpec.stack)")
    z, h = {}, x
    for layer in spec.stack.layers:
        zl = layer.preactivation(h)
        z[layer.name] = zl
        if layer.name == upto:
            return z
        h = zl if layer.activation is None else layer.activation(zl)
    raise KeyError(f"unknown layer {upto!r}")


def optimal_input(
    spec: ModelSpec,
    objective: Objective,
    length: int,
    steps: int = 16,
    lr: float = 0.1,
    seed: int = 0,
) -> tuple[torch.Tensor, list[float]]:
    """Maximize ``objective`` over an input ``(F, length)`` from ``N(0, 1)`` with Adam.

    Returns the input and the objective's value before each step and after the last.
    """
    if not objective.layers:
        raise ValueError("the objective reads no layer")
    top = max(objective.layers, key=spec.layer_names.index)
    n_features = spec.stack.layers[0].conv.in_channels
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, n_features, length, generator=g).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    spec.model.eval()
    for p in spec.model.parameters():
        p.requires_grad_(False)
    history = []
    try:
        for _ in range(steps + 1):
            value = objective({"x": x, "z": preactivations(spec, x, top)})
            history.append(float(value.detach()))
            if len(history) > steps:
                break
            opt.zero_grad()
            (-value).backward()
            opt.step()
    finally:
        for p in spec.model.parameters():
            p.requires_grad_(True)
    return x.detach()[0], history


def visualize_group(
    spec: ModelSpec,
    layer_profiles: xr.Dataset,
    layer: str,
    group: str,
    k: int = 5,
    steps: int = 16,
    lr: float = 0.1,
    l1_weight: float = 1.0,
    l2_weight: float = 1.0,
    seed: int = 0,
) -> xr.DataArray:
    """The optimal input for the ``k`` most responsive neurons of ``group`` in ``layer``.

    Signs come from ``r_n``; the L1 weight is divided by ``RF_l`` and the L2 weight by
    ``sqrt(RF_l)`` **[choice]** so deeper layers are not regularized harder. Returns
    ``(frequency bin, offset)`` with offsets in ms and the objective history in attrs.
    """
    top = top_neurons(layer_profiles, group, k)
    rf = spec.geometry.receptive_field(layer)
    objective = (
        neurons(layer, top["neuron"].values, top.values)
        - l1(l1_weight / rf)
        - l2(l2_weight / math.sqrt(rf))
    )
    x, history = optimal_input(spec, objective, rf, steps, lr, seed)
    offsets = (np.arange(rf) - rf // 2) * spec.hop_seconds * 1000
    coords = {"offset_ms": ("offset", offsets, {"units": "ms"})}
    if spec.feature_config is not None:
        coords["frequency"] = ("bin", spec.feature_config.mel_frequencies(), {"units": "Hz"})
    return xr.DataArray(
        x.numpy(),
        dims=("bin", "offset"),
        coords=coords,
        name="optimal_input",
        attrs={
            "layer": layer,
            "group": group,
            "neurons": top["neuron"].values.tolist(),
            "signs": np.sign(top.values).tolist(),
            "objective": objective.name,
            "history": history,
            "steps": steps,
            "lr": lr,
            "seed": seed,
        },
    )


def sonify(x: np.ndarray, config, stats=None, n_iter: int = 32) -> np.ndarray:
    """Mel inversion of a z-normalized log-mel ``(F, T)`` to a waveform (librosa's
    Griffin-Lim). ``stats`` (:class:`gradnap.FeatureStats`, per-bin log-mel mean and std)
    undo the normalization; without them a flat -6 log-power level and unit spread are
    assumed. Returns float32 samples in [-1, 1] at ``config.sample_rate``."""
    import librosa

    x = np.asarray(x, dtype=np.float64)
    mean = np.full(x.shape[0], -6.0) if stats is None else np.asarray(stats.mean)
    std = np.ones(x.shape[0]) if stats is None else np.asarray(stats.std)
    power = np.exp(x * std[:, None] + mean[:, None])
    wav = librosa.feature.inverse.mel_to_audio(
        power,
        sr=config.sample_rate,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        power=2.0,
        fmin=config.fmin,
        fmax=config.fmax,
        n_iter=n_iter,
        htk=False,
        norm="slaney",
    )
    peak = np.abs(wav).max()
    return (wav / peak * 0.9 if peak > 0 else wav).astype(np.float32)
