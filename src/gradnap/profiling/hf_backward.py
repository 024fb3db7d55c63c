"""Exact per-event sensitivities of Hugging Face wav2vec2-family CTC models in two phases.

For ``Wav2Vec2ForCTC``, ``HubertForCTC``, ``WavLMForCTC`` and ``Data2VecAudioForCTC`` specs
built by :meth:`gradnap.ModelSpec.from_huggingface` (default layers: ``input``, ``conv0`` ..,
``projection``, ``layer0`` .., ``logits``). Work that every event repeats in one plain
backward per event is done once, and the batched part is only the cheap one
(``../shared/notes/generic-path.md``: batching whole backward passes does not pay on a CPU):

0. the CTC head ``lm_head`` is linear per frame: the cotangent of the last hidden state is
   the row ``W[c]`` at frame ``t`` (``W[c] - softmax(Y_t) W`` for the log-probability); no
   backward through the head.
1. the transformer part (feature projection .. last layer, the model's own modules, so
   WavLM's relative position bias, stable layer norm and Data2Vec's positional convolutions
   are the library's code): one forward, then ``torch.func.vjp`` + ``vmap`` over the events,
   as many at a time as ``max_memory`` allows. Gives the gradient of the conv encoder's
   output and of the projection and every layer (zero "taps" added to their outputs).
2. the conv feature encoder: a hand-written backward in channels-last matrix products, one
   event at a time, with what one forward saved (the activation's slope, the norm's
   statistics): the activation derivative as a mask, GroupNorm (per channel over time) or
   LayerNorm (per frame over channels), and each transposed convolution as one GEMM with
   the kernel ``(C_out, K C_in)`` and ``ceil(K / stride)`` strided sums.

What it cannot express (another ``*ForCTC`` family, an adapter, grouped/padded conv layers, a
non-elementwise activation, layers other than the default ones, training mode) falls back to the
generic path; :func:`unsupported` says why, and the profile's config records it.

Exactness: tests compare every layer with one plain autograd backward per event (max abs
diff <= 1e-6 x max|G|), for wav2vec2 (group and layer norm encoders, stable layer norm),
HuBERT, WavLM and Data2VecAudio.
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

from gradnap.profiling.hf_conv import ConvTape, conv_kind
from gradnap.profiling.sensitivity import DEFAULT_MAX_MEMORY, Window, _crop_full, _output

NAME = "hf_ctc"
NOT_HF = "not a Hugging Face spec"
# tested against plain autograd (tests/profiling/test_hf_backward.py); other *ForCTC models
# (SEW, UniSpeech, Conformer) may compute their logits otherwise: the generic path
FAMILIES = ("Wav2Vec2ForCTC", "HubertForCTC", "WavLMForCTC", "Data2VecAudioForCTC")
# elementwise activations of the conv encoder (transformers' ACT2FN names)
_ELEMENTWISE = {"gelu", "relu", "gelu_new", "gelu_fast", "gelu_python", "quick_gelu", "silu"}
_ELEMENTWISE |= {"swish", "tanh", "sigmoid", "relu6", "gelu_pytorch_tanh", "mish"}


def _base(model):
    return getattr(model, model.base_model_prefix, None)


def layer_paths(model) -> dict[str, tuple[str, int | None]]:
    """Module path -> (kind, index) of every layer this backend computes."""
    prefix = model.base_model_prefix
    base = _base(model)
    paths = {
        f"{prefix}.feature_extractor.conv_layers.{i}": ("conv", i)
        for i in range(len(base.feature_extractor.conv_layers))
    }
    paths[f"{prefix}.feature_projection"] = ("projection", None)
    paths.update(
        {f"{prefix}.encoder.layers.{i}": ("layer", i) for i in range(len(base.encoder.layers))}
    )
    paths["lm_head"] = ("logits", None)
    return paths


def unsupported(spec) -> str | None:
    """Why this backend cannot compute the spec's sensitivities exactly, or None."""
    model = spec.model
    if not str(spec.description.get("arch", "")).startswith("huggingface:"):
        return NOT_HF
    if type(model).__name__ not in FAMILIES:
        return f"{type(model).__name__} is not one of the families it is tested on"
    if not isinstance(getattr(model, "lm_head", None), nn.Linear):
        return f"{type(model).__name__}: no linear CTC head lm_head"
    base = _base(model)
    if base is None or not all(
        hasattr(base, a) for a in ("feature_extractor", "feature_projection", "encoder")
    ):
        return f"{type(model).__name__}: not a wav2vec2-family model"
    if getattr(base, "adapter", None) is not None:
        return "the model has an adapter (config.add_adapter)"
    if model.training:
        return "the model is in training mode"
    if getattr(model.config, "feat_extract_activation", None) not in _ELEMENTWISE:
        return f"conv activation {model.config.feat_extract_activation!r} is not elementwise"
    for i, layer in enumerate(base.feature_extractor.conv_layers):
        if conv_kind(layer) is None:
            return f"conv layer {i} ({type(layer).__name__}): not conv + norm + activation"
    paths = layer_paths(model)
    for name, tap in spec.taps.items():
        if tap.path not in paths or tap.item not in (None, 0):
            return f"layer {name!r} ({tap.path}): not one of the default layers"
    return None


@contextlib.contextmanager
def _hooks(pairs):
    """Forward hooks ``(module, fn)``, removed on exit."""
    handles = [m.register_forward_hook(fn) for m, fn in pairs]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class _Given(nn.Module):
    """Stands in for the feature encoder: returns the given (1, C, T) features."""

    def __init__(self, feat):
        super().__init__()
        self.feat = feat

    def forward(self, _input_values):
        return self.feat


@contextlib.contextmanager
def _feature_encoder_replaced(base, feat):
    original = base.feature_extractor
    base.feature_extractor = _Given(feat)
    try:
        yield
    finally:
        base.feature_extractor = original


def _add(delta):
    def hook(_module, _inputs, out):
        if torch.is_tensor(out):
            return out + delta
        return (out[0] + delta, *out[1:])

    return hook


class _Tape:
    """Phase 1's forward and the conv encoder's record for one utterance."""

    def __init__(self, spec, x: torch.Tensor):
        model = spec.model
        self.base = base = _base(model)
        self.conv = ConvTape(base.feature_extractor.conv_layers, x)
        feat = self.conv.features
        n_frames, hidden = feat.shape[-1], model.lm_head.in_features
        deltas = [feat.new_zeros(1, n_frames, hidden) for _ in range(1 + len(base.encoder.layers))]
        modules = [base.feature_projection, *base.encoder.layers]
        wave = x[:, 0]

        def transformer(f, *ds):
            with (
                _feature_encoder_replaced(base, f),
                _hooks([(m, _add(d)) for m, d in zip(modules, ds)]),
            ):
                return base(wave)[0]

        with torch.enable_grad():
            last, self.vjp = torch.func.vjp(transformer, feat, *deltas)
        with torch.no_grad():
            self.logits = model.lm_head(last.detach())[0]  # (T, K)
        self.n_frames, self.hidden, self.n_layers = n_frames, hidden, len(base.encoder.layers)
        heads = getattr(model.config, "num_attention_heads", 1)
        inter = getattr(model.config, "intermediate_size", 4 * hidden)
        # the vjp's working set per event: ~12 (T x H) and 2 (T x F) per layer, and the
        # attention's (heads x T x T) twice (the sdpa backward's)
        t = n_frames
        self.phase1_bytes = (
            4 * (self.n_layers + 1) * (12 * t * hidden + 2 * t * inter + 2 * heads * t * t)
        )


def _tape(spec, x):
    """The utterance's tape, kept on the spec while the same input tensor (unchanged) and
    weights come back (the Profiler calls once per chunk of events)."""
    key = (x._version, tuple(p._version for p in spec.model.parameters()))
    cached = spec.__dict__.get("_hf_tape")
    if cached is not None and cached[0] is x and cached[1] == key:
        return cached[2]
    spec.__dict__["_hf_tape"] = None
    tape = _Tape(spec, x)
    spec.__dict__["_hf_tape"] = (x, key, tape)
    return tape


@torch.no_grad()
def hf_ctc(
    spec,
    x: torch.Tensor,
    t: torch.Tensor,
    c: torch.Tensor,
    layers: list[str],
    sensitivity: str = "logit",
    max_memory: float = DEFAULT_MAX_MEMORY,
) -> dict[str, Window]:
    """``G_l = dY[c_e, t_e] / dA_l`` for every layer of ``layers``, exactly, in two phases.

    ``x``: the front end's waveform (1, 1, N); ``t``, ``c``: (E,) output frames and classes.
    ``max_memory``: bytes; phase 1 runs as many events at a time as half of it holds.
    Returns ``{layer: Window}`` over the whole utterance (``start`` 0), as :func:`generic`.
    """
    model = spec.model
    paths = layer_paths(model)
    kinds = {n: ("input", None) if n == "input" else paths[spec.taps[n].path] for n in layers}
    tape = _tape(spec, x)
    e, n_t = len(t), tape.n_frames
    w = model.lm_head.weight.detach()  # (K, H)
    top = torch.zeros(e, w.shape[0], dtype=w.dtype, device=w.device)
    top[torch.arange(e), c] = 1
    if sensitivity != "logit":
        _output(tape.logits.T[None, :, :1], sensitivity)  # checks the name
        top -= torch.softmax(tape.logits[t], dim=-1)
    full: dict[str, torch.Tensor] = {}
    for n, (kind, _) in kinds.items():
        if kind == "logits":
            g = top.new_zeros(e, w.shape[0], n_t)
            g[torch.arange(e), :, t] = top
            full[n] = g
    conv_keep = {i for kind, i in kinds.values() if kind == "conv"}
    want_input = any(kind == "input" for kind, _ in kinds.values())
    hidden_wanted = any(kind in ("projection", "layer") for kind, _ in kinds.values())
    if e and (conv_keep or want_input or hidden_wanted):
        cot = top.new_zeros(e, 1, n_t, tape.hidden)
        cot[torch.arange(e), 0, t] = top @ w
        chunk = max(1, min(e, int(max_memory // 2 // tape.phase1_bytes)))
        with warnings.catch_warnings():  # the CPU flash attention's backward, per event
            warnings.filterwarnings("ignore", "There is a performance drop", UserWarning)
            grads = torch.func.vmap(tape.vjp, chunk_size=chunk)(cot)
        d_feat, d_proj, d_layers = grads[0][:, 0], grads[1][:, 0], grads[2:]
        for n, (kind, i) in kinds.items():
            if kind == "projection":
                full[n] = d_proj.transpose(1, 2)
            elif kind == "layer":
                full[n] = d_layers[i][:, 0].transpose(1, 2)
        if conv_keep or want_input:
            _conv_phase(tape.conv, d_feat, kinds, full)
    for n, (kind, i) in kinds.items():  # no events: empty gradients of the right shapes
        if n not in full:
            shape = {"input": (1, x.shape[-1]), "conv": tape.conv.shape(i or 0)[::-1]}
            full[n] = top.new_zeros(0, *shape.get(kind, (tape.hidden, n_t)))
    return _crop_full(spec, {n: full[n] for n in layers}, t, x.shape[-1])


def _conv_phase(conv: ConvTape, d_feat, kinds, full) -> None:
    """Phase 2, one event at a time (batching it only adds memory traffic): ``d_feat``
    (E, C_last, T_last) -> the conv layers' and the input's gradients into ``full``, each
    (E, C_i, T_i) (a view of channels-last storage)."""
    e = d_feat.shape[0]
    rows = {}  # conv index (-1: the input) -> layer name
    for n, (kind, i) in kinds.items():
        if kind in ("conv", "input"):
            rows[-1 if kind == "input" else i] = n
    bufs = {i: d_feat.new_empty(e, *conv.shape(i)) for i in rows}
    stop = min(rows) if rows else len(conv.layers)
    for ev in range(e):
        conv.backward(d_feat[ev].T, {i: b[ev] for i, b in bufs.items()}, stop)
    for i, n in rows.items():
        full[n] = bufs[i].transpose(1, 2)


__all__ = ["NAME", "hf_ctc", "layer_paths", "unsupported"]
