"""The backward of a wav2vec2-family conv feature encoder, by hand, one event at a time.

Phase 2 of :mod:`gradnap.profiling.hf_backward`. The encoder is a stack of unpadded
``Conv1d`` layers, each followed by an optional norm and an elementwise activation:
GroupNorm with one group per channel (over time; wav2vec2/HuBERT base's first layer),
LayerNorm over the channels of each frame (``feat_extract_norm="layer"``, Data2VecAudio), or
none. One forward keeps, channels-last, each layer's activation slope ``(T_i, C_i)`` and its
norm's normalized input and 1/std. The backward of one event is then, per layer, one
elementwise product with the slope, the norm's backward and one matrix product with the
kernel ``(C_out, K C_in)`` followed by ``ceil(K / stride)`` strided sums (the transposed
convolution as a GEMM: oneDNN's ``conv_transpose1d`` was measured no faster than the plain
backward, ``../shared/notes/generic-path.md``). A GroupNorm's backward is folded into the
following matrix products (its per-channel means become a rank-one term and one product
with the normalized input), so the widest layer is read twice instead of about nine times.
Work buffers are kept across events (allocating 50 MB blocks per event cost page faults).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def conv_kind(layer) -> str | None:
    """'none', 'group' (GroupNorm, one group per channel, over time) or 'layer' (LayerNorm
    over channels per frame) for a conv layer of the feature encoder, or None (not one this
    backward expresses)."""
    conv = getattr(layer, "conv", None)
    if not isinstance(conv, nn.Conv1d) or conv.padding_mode != "zeros":
        return None
    if conv.groups != 1 or conv.dilation != (1,) or conv.padding != (0,):
        return None
    if conv.kernel_size[0] < conv.stride[0]:
        return None
    norm = getattr(layer, "layer_norm", None)
    if norm is None:
        return "none"
    if isinstance(norm, nn.GroupNorm) and norm.num_groups == norm.num_channels == conv.out_channels:
        return "group" if norm.affine else None
    if isinstance(norm, nn.LayerNorm) and tuple(norm.normalized_shape) == (conv.out_channels,):
        return "layer" if norm.elementwise_affine and norm.bias is not None else None
    return None


class ConvTape:
    """One forward of the feature encoder on a waveform ``(1, 1, N)`` (the model's own
    modules, so :attr:`features`, ``(1, C_last, T_last)``, is what the model computes) and
    what the backward needs."""

    def __init__(self, conv_layers, wave: torch.Tensor):
        self.layers = list(conv_layers)
        self.n_samples = wave.shape[-1]
        self.slopes, self.norms, self.lengths, self.kernels = [], [], [], []
        h = wave.reshape(1, 1, -1)
        with torch.no_grad():
            for layer in self.layers:
                z = layer.conv(h)  # (1, C, T)
                kind, norm = conv_kind(layer), getattr(layer, "layer_norm", None)
                w = layer.conv.weight.detach()  # (C_out, C_in, K) -> (C_out, K * C_in)
                w = w.permute(0, 2, 1).reshape(w.shape[0], -1).contiguous()
                if kind == "group":  # statistics in float64: closer to the exact gradient
                    z64 = z.double()
                    mu = z64.mean(-1, keepdim=True)
                    rstd = torch.rsqrt((z64 - mu).pow(2).mean(-1, keepdim=True) + norm.eps)
                    xhat = ((z64 - mu) * rstd)[0].T.to(z.dtype).contiguous()
                    rstd = rstd.to(z.dtype)
                    a = rstd[0, :, 0] * norm.weight.detach()  # rstd_c gamma_c
                    self.norms.append((kind, xhat, a, a[:, None] * w))
                    y = norm(z)
                elif kind == "layer":
                    zt = z[0].T.double()
                    mu = zt.mean(-1, keepdim=True)
                    rstd = torch.rsqrt((zt - mu).pow(2).mean(-1, keepdim=True) + norm.eps)
                    xhat = ((zt - mu) * rstd).to(z.dtype).contiguous()
                    self.norms.append((kind, xhat, rstd.to(z.dtype), None))
                    y = norm(z.transpose(-2, -1)).transpose(-2, -1)
                else:
                    self.norms.append(None)
                    y = z
                with torch.enable_grad():  # the activation's exact derivative, elementwise
                    yy = y.detach().requires_grad_(True)
                    act = layer.activation(yy)
                    (slope,) = torch.autograd.grad(act, yy, torch.ones_like(act))
                self.slopes.append(slope[0].T.contiguous())
                self.lengths.append(z.shape[-1])
                self.kernels.append(w)
                h = act.detach()
        self.features = h
        self._work: dict[str, torch.Tensor] = {}

    def _buffer(self, name: str, shape) -> torch.Tensor:
        """A work buffer of ``shape``, reused across events (one flat block per name)."""
        n = math.prod(shape)
        buf = self._work.get(name)
        if buf is None or buf.numel() < n:
            buf = self._work[name] = self.slopes[0].new_empty(n)
        return buf[:n].view(shape)

    def shape(self, i: int) -> tuple[int, int]:
        """(T_i, C_i) of layer ``i``'s output; ``i = -1``: the input (N, 1)."""
        if i < 0:
            return (self.n_samples, 1)
        return (self.lengths[i], self.layers[i].conv.out_channels)

    @torch.no_grad()
    def backward(self, g: torch.Tensor, outs: dict, stop: int) -> None:
        """One event: ``g`` (T_last, C_last), the cotangent of the last layer's output ->
        each layer ``i`` of ``outs`` gets its gradient written into ``outs[i]`` (T_i, C_i),
        ``outs[-1]`` (N, 1) the input's; the gradients below layer ``stop`` are not computed."""
        top = len(self.layers) - 1
        if top in outs:
            outs[top].copy_(g)
            g = outs[top]
        for i in range(top, stop, -1):
            dz = torch.mul(g, self.slopes[i], out=self._buffer("dz", g.shape))
            p = self._input_gradient(i, dz)
            dest = outs.get(i - 1)
            if dest is None:
                dest = self._buffer(f"g{i % 2}", self.shape(i - 1))
            self._col2im(i, p, dest)
            g = dest

    def _input_gradient(self, i: int, dz: torch.Tensor) -> torch.Tensor:
        """``dz`` (T, C_out), the cotangent before the norm -> (T, K, C_in): each frame's
        contribution to its K input frames."""
        w = self.kernels[i]
        t = dz.shape[0]
        p = self._buffer("p", (t, w.shape[1]))
        norm = self.norms[i]
        if norm is None:
            torch.mm(dz, w, out=p)
        elif norm[0] == "group":
            # dx = a (dz - mean_t dz - xhat mean_t(dz xhat)), a = rstd gamma, per channel
            _, xhat, a, aw = norm
            mu1 = dz.mean(0)
            mu2 = torch.linalg.vecdot(dz, xhat, dim=0) / t
            torch.mm(dz, aw, out=p)
            p.addmm_(xhat, (a * mu2)[:, None] * w, alpha=-1)
            p.sub_(((a * mu1) @ w)[None])
        else:  # LayerNorm over the channels of each frame
            _, xhat, rstd, _ = norm
            v = dz * self.layers[i].layer_norm.weight.detach()
            m1 = v.mean(1, keepdim=True)
            m2 = (v * xhat).mean(1, keepdim=True)
            dx = v.sub_(m1).sub_(xhat * m2).mul_(rstd)
            torch.mm(dx, w, out=p)
        conv = self.layers[i].conv
        return p.view(t, conv.kernel_size[0], conv.in_channels)

    def _col2im(self, i: int, p: torch.Tensor, dest: torch.Tensor) -> None:
        """Sum ``p`` (T, K, C_in) into ``dest`` (N_in, C_in): tap k of frame t at input
        frame ``s t + k``. Taps ``j s .. j s + s - 1`` of all frames are one strided view
        (K >= s: :func:`conv_kind`)."""
        t, k, c = p.shape
        s = self.layers[i].conv.stride[0]
        dest[: s * t].view(t, s, c).copy_(p[:, :s])
        dest[s * t :].zero_()
        for j in range(1, math.ceil(k / s)):
            w = min(s, k - j * s)
            lo = j * s
            if t > 1:
                dest[lo : lo + s * (t - 1)].view(t - 1, s, c)[:, :w] += p[:-1, lo : lo + w]
            end = lo + s * (t - 1)
            dest[end : end + w] += p[-1, lo : lo + w]
