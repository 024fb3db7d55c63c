"""Exact per-token sensitivities of a Whisper encoder, many tokens in one batched backward.

METHOD.md "Sensitivity" for an encoder-decoder model: ``G_l = d Y[c_e, i_e] / d A_l`` for the
input log-mel and every encoder layer, where ``Y[c, i]`` is the decoder's logit (or
log-probability) of token ``c`` at decoder position ``i``, teacher-forced.

Two phases (``../shared/notes/generic-path.md``: batching whole backward passes does not
pay on a CPU, removing work every event repeats does):

1. decoder (:mod:`.whisper_probe`): one teacher-forced decoder forward whose
   cross-attentions see ``enc + delta``, ``delta`` a zero leaf, written so that the backward
   to it is of rank heads x tokens per layer, then one vector-Jacobian product per token
   from the decoder's last hidden state, whose cotangent at position ``i`` is the row
   ``W[c]`` of the tied output projection (no backward through the 51,864-way projection),
   or ``W[c] - softmax(Y_i) W`` for the log-probability. Gives ``dY/d enc`` for E tokens,
   (E, T, d).
2. encoder: a hand-written backward of the encoder, channels-last matrix products batched
   over the E tokens, with what the forward saved and every token shares: the GELU
   derivatives, the layer-norm statistics (their scales folded into the next product's
   weights), each attention layer's queries, keys, values and the softmax's log-sum-exp.
   Every product and elementwise step writes into buffers the tape keeps and reuses for
   every layer and chunk (:class:`_Workspace`): a fresh tensor of a few MB costs its page
   faults on every call, as much as the arithmetic on it (a plain autograd backward pays
   them for every intermediate of every token). The two convolutions' backward is computed
   only over the utterance's own frames (and the one frame of halo their kernels need): the
   padding's gradients below the first attention layer are never used.

Exactness: the test compares every layer with one plain autograd backward per token through
transformers' own ``WhisperForConditionalGeneration`` (max abs diff <= 1e-6 x max|G|).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F

_SQRT_2PI = math.sqrt(2 * math.pi)


def _gelu_and_slope(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """erf GELU (as ``F.gelu``) and its derivative ``Phi(z) + z phi(z)``."""
    cdf = 0.5 * (1 + torch.erf(z * (1 / math.sqrt(2))))
    return F.gelu(z), cdf + z * torch.exp(-0.5 * z * z) / _SQRT_2PI


def _flushing_subnormals() -> bool:
    """Whether this thread treats subnormal float32 values as zero (1e-30 x 1e-10 is one)."""
    return float(torch.tensor(1e-30) * torch.tensor(1e-10)) == 0.0


@contextmanager
def flush_subnormals() -> Iterator[None]:
    """Treat subnormal floats (``|x| < 1.2e-38`` in float32) as zero on this thread inside
    the block; the setting before it is restored after.

    Why: GELU's derivative underflows to subnormals for strongly negative inputs (92,744 of
    tiny.en's last layer's 2.3 M on 10 s of speech), and x86 CPUs handle subnormals in
    microcode: the product that multiplies them ran 3x slower (177 against 56 ms per token).
    Exactness: each value flushed is below 1.2e-38, so a gradient changes by less than
    1e-34 in absolute terms, far below float32's rounding of anything the profiles hold.
    Only this thread: torch's intra-op worker threads (``--threads`` > 1) keep theirs.
    """
    if _flushing_subnormals() or not torch.set_flush_denormal(True):
        yield  # already on, or a CPU without flush-to-zero
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


class _Workspace:
    """Named buffers, each reused for every call that asks for it by name (grown when a
    call needs more): the backward's intermediates live here instead of in fresh tensors."""

    def __init__(self):
        self._buffers: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """A contiguous ``shape`` view of buffer ``name`` (values left from its last use)."""
        n = math.prod(shape)
        buf = self._buffers.get(name)
        if buf is None or buf.numel() < n or buf.dtype != like.dtype or buf.device != like.device:
            buf = self._buffers[name] = like.new_empty(n)
        return buf[:n].view(shape)


@dataclass
class _Norm:
    """Saved for a layer norm's backward: normalized input and 1/std, (T, d)/(T, 1)."""

    xhat: torch.Tensor
    rstd: torch.Tensor
    gamma: torch.Tensor

    @classmethod
    def forward(cls, ln: torch.nn.LayerNorm, x: torch.Tensor) -> tuple[torch.Tensor, _Norm]:
        mu = x.mean(-1, keepdim=True)
        var = (x - mu).pow(2).mean(-1, keepdim=True)
        rstd = torch.rsqrt(var + ln.eps)
        xhat = (x - mu) * rstd
        return xhat * ln.weight + ln.bias, cls(xhat, rstd, ln.weight.detach())

    def backward_(self, g: torch.Tensor, ws: _Workspace) -> torch.Tensor:
        """In place: ``g`` (E, T', d), the cotangent of the output's first T' frames times
        gamma (folded into the product that made it), becomes the input's cotangent
        ``rstd (g - mean(g) - xhat mean(g xhat))``. Returns ``g``."""
        t = g.shape[1]
        xhat, rstd = self.xhat[:t], self.rstd[:t]
        mean_g = g.mean(-1, keepdim=True)
        mean_gx = torch.mul(g, xhat, out=ws("norm", tuple(g.shape), g)).mean(-1, keepdim=True)
        return g.sub_(mean_g).addcmul_(xhat, mean_gx, value=-1).mul_(rstd)


_FLASH = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
_FLASH_BACKWARD = getattr(
    torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None
)


def _use_flash(x: torch.Tensor) -> bool:
    """The CPU flash-attention kernels (what ``scaled_dot_product_attention`` runs on the
    CPU): their backward, batched over tokens, is 1.7x the matrix-product one below (it
    works in cache-sized blocks instead of materializing (H, E, T, T))."""
    return _FLASH_BACKWARD is not None and x.device.type == "cpu" and x.dtype == torch.float32


@dataclass
class _Layer:
    """What one ``WhisperEncoderLayer``'s backward needs, shared by every token; weights
    (out, in) as the backward multiplies them, ``dx = dy @ W``, the layer norms' gamma and
    the query's scaling folded into the products that feed them."""

    norm1: _Norm
    q: torch.Tensor  # (1, H, T, dh), scaled
    k: torch.Tensor  # (1, H, T, dh)
    v: torch.Tensor  # (1, H, T, dh)
    o: torch.Tensor  # (1, H, T, dh) attention output before out_proj
    p: torch.Tensor | None  # (H, T, T) softmax (matrix-product backward), or
    lse: torch.Tensor | None  # (1, H, T) its log-sum-exp (flash backward)
    norm2: _Norm
    slope: torch.Tensor  # (T, F) GELU'(fc1 output)
    w_fc2: torch.Tensor  # (d, F)
    w_fc1: torch.Tensor  # (F, d) x gamma of the final layer norm
    w_out: torch.Tensor  # (d, d)
    w_q: torch.Tensor  # (d, d) x scaling x gamma of the attention's layer norm
    w_k: torch.Tensor  # (d, d) x that gamma
    w_v: torch.Tensor  # (d, d) x that gamma


def _layer_forward(layer, h: torch.Tensor) -> tuple[torch.Tensor, _Layer]:
    """``WhisperEncoderLayer.forward`` for one (T, d) sequence, eval mode, saving."""
    att = layer.self_attn
    heads, dh = att.num_heads, att.head_dim
    t = h.shape[0]
    x, n1 = _Norm.forward(layer.self_attn_layer_norm, h)

    def split(y):
        return y.view(1, t, heads, dh).transpose(1, 2).contiguous()

    q = split(att.q_proj(x) * att.scaling)
    k, v = split(att.k_proj(x)), split(att.v_proj(x))
    p = lse = None
    if _use_flash(x):
        o, lse = _FLASH(q, k, v, 0.0, False, scale=1.0)
    else:
        p = torch.softmax(q[0] @ k[0].transpose(1, 2), dim=-1)
        o = (p @ v[0])[None]
    h1 = h + att.out_proj(o[0].transpose(0, 1).reshape(t, heads * dh))
    x2, n2 = _Norm.forward(layer.final_layer_norm, h1)
    f, slope = _gelu_and_slope(layer.fc1(x2))
    g1 = n1.gamma
    saved = _Layer(
        n1, q, k, v, o, p, lse, n2, slope,
        w_fc2=layer.fc2.weight.detach(),
        w_fc1=layer.fc1.weight.detach() * n2.gamma,
        w_out=att.out_proj.weight.detach(),
        w_q=att.q_proj.weight.detach() * (att.scaling * g1),
        w_k=att.k_proj.weight.detach() * g1,
        w_v=att.v_proj.weight.detach() * g1,
    )  # fmt: skip
    return h1 + layer.fc2(f), saved


def _flash_backward(s: _Layer, do: torch.Tensor, queries: int, keys: int):
    """The flash kernel's backward for the first ``queries`` queries and ``keys`` keys,
    (E, H, T, dh) cotangent: exact for dQ of those queries when ``keys`` is all, and for
    dK, dV of those keys when ``queries`` is all (the softmax's log-sum-exp and the
    output, saved over all keys and queries, are what it needs)."""
    e = do.shape[0]
    ex = lambda y: y.expand(e, *y.shape[1:])  # noqa: E731 (stride 0: no copies)
    q, o, lse = s.q[:, :, :queries], s.o[:, :, :queries], s.lse[:, :, :queries]
    k, v = s.k[:, :, :keys], s.v[:, :, :keys]
    return _FLASH_BACKWARD(
        do[:, :, :queries].contiguous(),
        ex(q),
        ex(k),
        ex(v),
        ex(o),
        ex(lse),
        0.0,
        False,
        scale=1.0,
    )


def _attention_backward(s: _Layer, do: torch.Tensor, rows: int):
    """(E, T, H, dh) cotangent of the attention output -> of the scaled query, key and
    value on the first ``rows`` frames, each (E * rows, H * dh)."""
    e, t, heads, dh = do.shape
    flat = lambda g: g.transpose(1, 2).reshape(e * rows, heads * dh)  # noqa: E731
    if s.lse is not None:
        do = do.transpose(1, 2)
        if rows == t:
            return tuple(map(flat, _flash_backward(s, do, t, t)))
        # two smaller calls instead of one: 2 x rows / T of the work
        dq = _flash_backward(s, do, rows, t)[0]
        _, dk, dv = _flash_backward(s, do, t, rows)
        return flat(dq), flat(dk), flat(dv)
    p, q, k, v, o = s.p, s.q[0], s.k[0], s.v[0], s.o[0]
    # dV_h = P_h^T [dO_1 .. dO_E]: tokens in the matrix's columns, one GEMM per head
    dv = p.transpose(1, 2) @ do.permute(2, 1, 0, 3).reshape(heads, t, e * dh)
    dv = dv.view(heads, t, e, dh).permute(2, 0, 1, 3)  # (E, H, T, dh)
    do_h = do.permute(2, 0, 1, 3).reshape(heads, e * t, dh)  # (H, E*T, dh)
    ds = do_h @ v.transpose(1, 2)  # dP, (H, E*T, T)
    dot = (do_h.view(heads, e, t, dh) * o[:, None]).sum(-1, keepdim=True)
    ds = ds.view(heads, e, t, t).sub_(dot).mul_(p[:, None])  # dS = P (dP - rowsum(dO O))
    dq = (ds.view(heads, e * t, t) @ k).view(heads, e, t, dh).transpose(0, 1)
    dk = (ds.transpose(2, 3) @ q[:, None]).transpose(0, 1)  # (E, H, T, dh)
    return tuple(flat(g[:, :, :rows]) for g in (dq, dk, dv))


def _layer_backward(s: _Layer, dy: torch.Tensor, ws: _Workspace, rows: int | None = None):
    """(E, T, d) cotangent of a layer's output -> of its input, (E, rows, d) on the first
    ``rows`` frames (default all: below the lowest attention layer only the utterance's
    own frames and the convolutions' halo are needed, which saves a third of its attention
    backward and two thirds of its projections' for a 10 s utterance).

    ``dy`` must live in ``ws``'s buffer ``"dy"``: the result is written there (``dy`` is
    used up first), every intermediate into the workspace's other buffers."""
    e, t, d = dy.shape
    rows = t if rows is None else rows
    heads, dh = s.q.shape[1], s.q.shape[3]
    f = s.slope.shape[1]
    df = torch.mm(dy.view(e * t, d), s.w_fc2, out=ws("ffn", (e * t, f), dy))
    df.view(e, t, f).mul_(s.slope)  # through the GELU
    dh1 = torch.mm(df, s.w_fc1, out=ws("dh1", (e * t, d), dy)).view(e, t, d)
    s.norm2.backward_(dh1, ws).add_(dy)  # the residual
    do = torch.mm(dh1.view(e * t, d), s.w_out, out=ws("do", (e * t, d), dy))
    dq, dk, dv = _attention_backward(s, do.view(e, t, heads, dh), rows)
    dx = torch.mm(dq, s.w_q, out=ws("dy", (e * rows, d), dy))  # dy is used up
    dx = dx.addmm_(dk, s.w_k).addmm_(dv, s.w_v).view(e, rows, d)
    return s.norm1.backward_(dx, ws).add_(dh1[:, :rows])


class EncoderTape:
    """One forward of a ``WhisperEncoder`` (eval mode, one utterance) that keeps every
    activation METHOD.md profiles and what the batched backward needs.

    ``features``: (n_mels, 2 * max_source_positions) log-mel, the utterance's own first
    ``n_frames`` frames then padding. Layers, bottom to top, with their frame hop:
    ``input`` (n_mels x n_frames, 10 ms), ``conv1`` (GELU output, d x n_frames, 10 ms),
    ``conv2`` (GELU output, d x ceil(n_frames / 2), 20 ms), ``encoder.layers.<i>`` (each
    layer's output, d x ceil(n_frames / 2), 20 ms). ``enc`` is the encoder's output (after
    its final layer norm), (T, d), what the decoder attends to. ``workspace``: the
    backward's buffers, kept for the tape's life (about ``bytes_per_event`` per token of
    the largest batch).
    """

    def __init__(self, encoder, features: torch.Tensor, n_frames: int):
        if encoder.training:
            raise ValueError("the Whisper encoder must be in eval mode (dropout would differ)")
        expected = encoder.config.max_source_positions * 2
        if features.dim() != 2 or features.shape[1] != expected:
            raise ValueError(f"features must be (n_mels, {expected}), got {tuple(features.shape)}")
        if not 0 < n_frames <= expected:
            raise ValueError(f"n_frames must be in 1..{expected}, got {n_frames}")
        self.encoder, self.n_frames = encoder, int(n_frames)
        self.n_enc = (self.n_frames + 1) // 2
        self.workspace = _Workspace()
        with torch.no_grad():
            x = features.to(encoder.conv1.weight)
            z1 = F.conv1d(x[None], encoder.conv1.weight, encoder.conv1.bias, padding=1)[0]
            a1, self.slope1 = _gelu_and_slope(z1)
            z2 = encoder.conv2(a1[None])[0]
            a2, self.slope2 = _gelu_and_slope(z2)
            h = a2.T + encoder.embed_positions.weight
            self.layers: list[_Layer] = []
            outs = []
            for layer in encoder.layers:
                h, saved = _layer_forward(layer, h)
                self.layers.append(saved)
                outs.append(h)
            self.enc, self.final = _Norm.forward(encoder.layer_norm, h)
        n, m = self.n_frames, self.n_enc
        self.activations: dict[str, torch.Tensor] = {
            "input": x[:, :n],
            "conv1": a1[:, :n],
            "conv2": a2[:, :m],
            **{f"encoder.layers.{i}": o[:m].T for i, o in enumerate(outs)},
        }
        self.frame_ms = {
            name: (10.0 if name in ("input", "conv1") else 20.0) for name in self.activations
        }

    @property
    def layer_names(self) -> list[str]:
        return list(self.activations)

    def backward(self, d_enc: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cotangents of the encoder output, (E, T, d), -> each layer's gradient on its own
        frames, (E, C_l, T_own_l) (the layout of :attr:`activations`, new tensors), with
        subnormals flushed to zero (:func:`flush_subnormals`)."""
        with torch.no_grad(), flush_subnormals():
            return self._backward(d_enc)

    def _backward(self, d_enc: torch.Tensor) -> dict[str, torch.Tensor]:
        n, m = self.n_frames, self.n_enc
        ws = self.workspace
        g = torch.mul(d_enc, self.final.gamma, out=ws("dy", tuple(d_enc.shape), d_enc))
        self.final.backward_(g, ws)
        grads: dict[str, torch.Tensor] = {}
        # below the lowest attention layer, only own frames and the convolutions' halo:
        # conv1 frames 0..n (one past the end feeds the input's last frame), which need
        # conv2 frames 0..(n+1)//2
        keep2 = min((n + 1) // 2 + 1, g.shape[1])
        for i in range(len(self.layers) - 1, -1, -1):
            grads[f"encoder.layers.{i}"] = g[:, :m].transpose(1, 2).contiguous()
            g = _layer_backward(self.layers[i], g, ws, keep2 if i == 0 else None)
        grads["conv2"] = g[:, :m].transpose(1, 2).contiguous()
        enc = self.encoder
        dz2 = g[:, :keep2].transpose(1, 2) * self.slope2[:, :keep2]
        da1 = F.conv_transpose1d(dz2, enc.conv2.weight, stride=2, padding=1, output_padding=1)
        keep1 = min(n + 1, self.slope1.shape[1])
        da1 = da1[..., :keep1]
        grads["conv1"] = da1[..., :n]
        dx = F.conv_transpose1d(da1 * self.slope1[:, :keep1], enc.conv1.weight, padding=1)
        grads["input"] = dx[..., :n]
        return {name: grads[name].contiguous() for name in self.activations}

    def bytes_per_event(self) -> int:
        """Working memory of the encoder backward per token, in bytes: the FFN's (T x F),
        about 14 (T x d) and, without the flash kernel, the attention's dP/dS (H x T x T)."""
        s = self.layers[0] if self.layers else None
        t, d = self.enc.shape
        heads = s.q.shape[1] if s is not None else 0
        attn = heads * t * t if s is not None and s.p is not None else 0
        ffn = s.slope.numel() if s is not None else 0
        el = self.enc.element_size()
        return el * (2 * attn + 2 * ffn + 14 * t * d)
