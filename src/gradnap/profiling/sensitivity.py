"""Sensitivities ``G_l = dY[c_e, t_e] / dA_l`` of each event (METHOD.md "Sensitivity").

Three exact paths, all returning, per layer, a :class:`Window`: the gradient inside the
gradient-support window of the event's output frame (zeros where the window leaves the
utterance) and where that window starts.

- :func:`reference`: one plain autograd backward per event. Short and obviously right; the
  oracle of the tests.
- :func:`fast`: for stacks of 1-D convolutions with element-wise activations. One forward
  per utterance keeps the activation derivatives; then the one-hot gradients of many
  events travel down their receptive-field cones together (transposed convolutions over
  the support windows only, batched over events), with the zero padding at the utterance
  edges reproduced exactly. Cropping the *forward* instead would not be exact (masks flip
  at the crop edges), so it is never done. Where a layer's kernel is long against the
  window (Wav2Letter's conv1: 48 taps, and the 7-tap layers over windows of 32-68 frames),
  the transposed convolution is done as a product of spectra (:func:`conv_transpose_fft`,
  the same linear map, exact up to float32 rounding like the direct one).
- :func:`generic`: any model, one backward per event through one forward's graph, over the
  full utterance; cropped to the support windows only where a conv geometry bounds them.

:func:`sensitivities` is the public entry point (events from the model's own predictions).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.fft import next_fast_len

from gradnap.profiling.spec import ModelSpec


@dataclass
class Window:
    """Values of one layer for E events: ``values`` (E, C, W) over frames
    ``start[e] .. start[e] + W - 1`` of that layer."""

    values: torch.Tensor
    start: torch.Tensor


def gather_window(full: torch.Tensor, start: torch.Tensor, width: int) -> torch.Tensor:
    """``full`` (C, T) at frames ``start[e] + 0..width-1`` -> (E, C, width), zero outside."""
    t = full.shape[1]
    if len(start) == 0:
        return full.new_zeros(0, full.shape[0], width)
    lo, hi = int(start.min()), int(start.max()) + width
    left, right = max(0, -lo), max(0, hi - t)
    padded = F.pad(full, (left, right)) if left or right else full  # zeros outside
    return padded.unfold(1, width, 1).permute(1, 0, 2)[start + left]  # a new (E, C, W)


def _support_start(spec: ModelSpec, layer: str, t: torch.Tensor, t_in: int) -> torch.Tensor:
    return torch.tensor(
        [spec.geometry.support(int(tt), layer, t_in)[0] for tt in t.tolist()],
        dtype=torch.long,
        device=t.device,
    )


def _forward(spec: ModelSpec, x: torch.Tensor, layers: list[str]):
    """The model's forward on ``x`` (requires grad): logits and the tensors of ``layers``."""
    logits, acts = spec.forward_with_activations(x)
    return logits, [x if n == "input" else acts[n] for n in layers]


SENSITIVITIES = ("logit", "log_prob")


def _output(logits: torch.Tensor, sensitivity: str) -> torch.Tensor:
    """What the sensitivity is taken of: the logits (the default **[choice]**) or the log
    probabilities ``log_softmax`` over the classes (dim 1 of (1, K, T))."""
    if sensitivity == "logit":
        return logits
    if sensitivity == "log_prob":
        return torch.log_softmax(logits, dim=1)
    raise ValueError(f"sensitivity must be one of {SENSITIVITIES}, not {sensitivity!r}")


def reference(
    spec: ModelSpec,
    x: torch.Tensor,
    t: torch.Tensor,
    c: torch.Tensor,
    layers: list[str],
    sensitivity: str = "logit",
) -> dict[str, Window]:
    """One autograd backward per event (the oracle)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits, tensors = _forward(spec, x, layers)
        logits = _output(logits, sensitivity)
        full = {n: [] for n in layers}
        for tt, cc in zip(t.tolist(), c.tolist()):
            grads = torch.autograd.grad(
                logits[0, cc, tt], tensors, retain_graph=True, allow_unused=True
            )
            for n, g, ten in zip(layers, grads, tensors):
                full[n].append(torch.zeros_like(ten[0]) if g is None else g[0])
    return _crop_full(spec, {n: torch.stack(v) for n, v in full.items()}, t, x.shape[-1])


def generic(
    spec: ModelSpec,
    x: torch.Tensor,
    t: torch.Tensor,
    c: torch.Tensor,
    layers: list[str],
    sensitivity: str = "logit",
) -> dict[str, Window]:
    """Any model: one forward, then one backward per event through the kept graph.

    Batching whole backward passes (``is_grads_batched``, ``vmap``, copies of the input) was
    measured slower on a CPU (docs: generic-path notes): same work, more memory. The
    gradients are over the whole utterance (a layer of unbounded support is never cropped by
    a conv geometry), so the caller bounds the events per call by memory
    (:func:`events_per_batch`)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits, tensors = _forward(spec, x, layers)
        logits = _output(logits, sensitivity)
        full = {
            n: ten.new_zeros((len(t),) + tuple(ten.shape[1:])) for n, ten in zip(layers, tensors)
        }
        for e, (tt, cc) in enumerate(zip(t.tolist(), c.tolist())):
            grads = torch.autograd.grad(
                logits[0, cc, tt], tensors, retain_graph=True, allow_unused=True
            )
            for n, g in zip(layers, grads):
                if g is not None:
                    full[n][e] = g[0]
    return _crop_full(spec, full, t, x.shape[-1])


DEFAULT_MAX_MEMORY = 2e9


def events_per_batch(shapes, max_memory: float = DEFAULT_MAX_MEMORY) -> int:
    """Events whose whole-utterance gradients (float32, every layer of ``shapes``, each
    ``(C_l, T_l)``) fit in ``max_memory`` bytes, with room for the alignment's copies (x2)."""
    per_event = sum(4 * int(torch.Size(s).numel()) for s in shapes) * 2
    return max(1, int(max_memory // max(per_event, 1)))


def sensitivities(
    spec: ModelSpec,
    x: torch.Tensor,
    t=None,
    c=None,
    layers=None,
    backend: str = "auto",
    max_memory: float = DEFAULT_MAX_MEMORY,
) -> dict[str, Window]:
    """Per-event sensitivities ``G_l = dY[c_e, t_e] / dA_l`` without profiling.

    ``x``: the model input ``(C, T)`` or ``(1, C, T)`` (what ``spec.front_end`` returns);
    ``t``: output frames (default: every frame whose predicted class is not the blank);
    ``c``: their classes (default: the predicted ones); ``layers``: names (default all).
    ``backend``: ``"fast"`` (conv stacks), ``"hf_ctc"`` (wav2vec2-family CTC models),
    ``"generic"``, ``"reference"`` or ``"auto"`` (:func:`auto_backend`).
    Returns ``{layer: Window}``: ``values`` ``(E, C_l, W)`` over frames
    ``start[e] .. start[e] + W - 1`` of that layer (the whole utterance where the support is
    unbounded). All events at once: :func:`sensitivity_batches` holds one batch at a time.

    >>> g = gradnap.sensitivities(spec, spec.front_end(wav, 16000))  # doctest: +SKIP
    >>> g["input"].values.shape                                      # doctest: +SKIP
    """
    parts = list(sensitivity_batches(spec, x, t, c, layers, backend, max_memory))
    layers = spec.check_layers(layers)
    return {
        n: Window(
            torch.cat([p[n].values for _, p in parts]), torch.cat([p[n].start for _, p in parts])
        )
        for n in layers
    }


def sensitivity_batches(
    spec: ModelSpec,
    x: torch.Tensor,
    t=None,
    c=None,
    layers=None,
    backend: str = "auto",
    max_memory: float = DEFAULT_MAX_MEMORY,
):
    """:func:`sensitivities` one batch of events at a time (as many as ``max_memory`` bytes
    of whole-utterance gradients hold, :func:`events_per_batch`): yields ``(frames,
    {layer: Window})`` with the batch's output frames ``(E_b,)``."""
    layers = spec.check_layers(layers)
    x = x[None] if x.dim() == 2 else x
    if backend == "auto":
        backend, _ = auto_backend(spec)
    compute = backend_function(backend)
    cache = spec.__dict__.setdefault("_shapes", {})  # layer shapes per input shape
    if t is None or c is None or tuple(x.shape) not in cache:
        with torch.no_grad():
            logits, acts = spec.forward_with_activations(x)
        cache.clear()
        cache[tuple(x.shape)] = {n: a.shape[1:] for n, a in acts.items()}
        pred = logits[0].argmax(0)
        t = torch.nonzero(pred != spec.blank).flatten() if t is None else torch.as_tensor(t)
        c = pred[t] if c is None else torch.as_tensor(c)
    t, c = torch.as_tensor(t), torch.as_tensor(c)
    known = cache[tuple(x.shape)]
    shapes = [x.shape[1:] if n == "input" else known[n] for n in layers]
    step = len(t) if backend == "fast" else events_per_batch(shapes, max_memory)
    kwargs = {"max_memory": max_memory} if backend == "hf_ctc" else {}
    for i in range(0, max(len(t), 1), max(step, 1)):
        yield t[i : i + step], compute(spec, x, t[i : i + step], c[i : i + step], layers, **kwargs)


def auto_backend(spec: ModelSpec) -> tuple[str, str | None]:
    """The backend ``"auto"`` means for ``spec``, and why a Hugging Face CTC spec falls back
    to the generic path (None otherwise): ``fast`` for conv stacks, ``hf_ctc``
    (:mod:`gradnap.profiling.hf_backward`) for wav2vec2-family CTC models it can express,
    else ``generic``."""
    if spec.stack is not None:
        return "fast", None
    from gradnap.profiling import hf_backward

    reason = hf_backward.unsupported(spec)
    if reason is None:
        return hf_backward.NAME, None
    if reason == hf_backward.NOT_HF:
        return "generic", None
    return "generic", f"{hf_backward.NAME} cannot: {reason}"


def backend_function(name: str):
    """The function of a backend name (fast, generic, reference, hf_ctc)."""
    if name == "hf_ctc":
        from gradnap.profiling.hf_backward import hf_ctc

        return hf_ctc
    return {"fast": fast, "generic": generic, "reference": reference}[name]


def _crop_full(spec, full, t, t_in):
    out = {}
    for name, g in full.items():
        timing = spec.timing.get(name)
        if (
            spec.geometry is None
            or name not in spec.geometry.layer_names
            or not (timing is None or timing.bounded)
        ):  # unbounded support: never cropped by a conv geometry
            out[name] = Window(g, torch.zeros(len(t), dtype=torch.long, device=g.device))
            continue
        start = _support_start(spec, name, t, t_in)
        width = spec.geometry.support_width(name)
        idx = start[:, None] + torch.arange(width, device=g.device)
        valid = (idx >= 0) & (idx < g.shape[-1])
        picked = torch.gather(
            g, 2, idx.clamp(0, g.shape[-1] - 1)[:, None, :].expand(-1, g.shape[1], -1)
        )
        out[name] = Window(picked * valid[:, None, :].to(g.dtype), start)
    return out


def _fft_length(layer, width: int) -> tuple[int, int]:
    """Output length of the layer's transposed convolution of a ``width``-frame gradient,
    and the (fast) FFT length that holds it without wrap-around."""
    s, d, k = layer.spec.stride, layer.spec.dilation, layer.spec.kernel
    out = (width - 1) * s + d * (k - 1) + 1
    return out, next_fast_len(out, real=True)


def use_fft(layer, width: int) -> bool:
    """Whether the spectral product costs under half the multiply-adds of the direct
    transposed convolution: ``4 C_in C_out (N/2 + 1)`` (complex) against ``C_in C_out K w``.
    (True for Wav2Letter's conv1..conv8 windows; never for 1x1 layers or width-1 windows.)"""
    _, n = _fft_length(layer, width)
    return layer.spec.kernel * width > 8 * (n // 2 + 1)


def _kernel_spectrum(layer, n: int) -> torch.Tensor:
    """``rfft`` of the layer's (dilated) kernel, ``(n // 2 + 1, C_out, C_in)``; cached on the
    layer until the weights change (``_version`` counts in-place updates). The ``paper``
    preset's conv1..conv8 hold about 130 MB of spectra."""
    w = layer.conv.weight
    key = (n, w.data_ptr(), w._version, w.dtype, w.device)
    cache = layer.__dict__.setdefault("_spectra", {})
    if key not in cache:
        cache.clear()
        d = layer.spec.dilation
        with torch.no_grad():
            wd = w.new_zeros(w.shape[0], w.shape[1], d * (w.shape[2] - 1) + 1)
            wd[..., ::d] = w
            cache[key] = torch.fft.rfft(wd, n=n).permute(2, 0, 1).contiguous()
    return cache[key]


def conv_transpose_fft(g: torch.Tensor, layer) -> torch.Tensor:
    """``F.conv_transpose1d(g, W, stride, dilation)`` as a product of spectra: the zero-stuffed
    gradient ``(E, C_out, w)`` and the dilated kernel, ``rfft`` of a length that holds the
    whole linear convolution (no wrap-around), one complex matrix product per frequency."""
    s = layer.spec.stride
    out, n = _fft_length(layer, g.shape[-1])
    if s > 1:  # conv_transpose puts g[j] at s * j
        u = g.new_zeros(g.shape[0], g.shape[1], (g.shape[-1] - 1) * s + 1)
        u[..., ::s] = g
        g = u
    spec = torch.bmm(torch.fft.rfft(g, n=n).permute(2, 0, 1), _kernel_spectrum(layer, n))
    return torch.fft.irfft(spec.permute(1, 2, 0), n=n)[..., :out]


def conv_transpose_one_frame(g: torch.Tensor, w: torch.Tensor, block: int = 256) -> torch.Tensor:
    """``F.conv_transpose1d`` of a one-frame gradient ``(E, C_out, 1)`` (no dilation): a
    matrix product with the kernel ``(C_out, C_in * K)``, summed over blocks of ``block``
    channels (float32 dot products over Wav2Letter's 2000 channels in one run drift twice
    as far from the float64 result as the blocked sum, or as the reference's backward)."""
    flat, g = w.reshape(w.shape[0], -1), g[:, :, 0]
    out = g[:, :block] @ flat[:block]
    for i in range(block, len(flat), block):
        out += g[:, i : i + block] @ flat[i : i + block]
    return out.reshape(len(g), w.shape[1], w.shape[2])


# The gradients are computed here, not by autograd: without no_grad the transposed
# convolutions with the weights (which require grad) recorded a graph, and the accumulator's
# in-place sums chained every utterance's graph, holding all its tensors (~60 MB an
# utterance with the bundled model).
@torch.no_grad()
def fast(
    spec: ModelSpec,
    x: torch.Tensor,
    t: torch.Tensor,
    c: torch.Tensor,
    layers: list[str],
    record=None,
    fft: bool | None = None,
    sensitivity: str = "logit",
) -> dict[str, Window]:
    """Exact gradients down the receptive-field cones, batched over events.

    ``sensitivity="log_prob"`` starts from ``d log_softmax(Y)[c] / dY = onehot(c) -
    softmax(Y)`` at the event's frame instead of the one-hot of the logit.
    ``record`` is ``spec.stack.forward_record(x)`` when the caller already has it. ``fft``:
    transposed convolutions as spectral products in every layer (True), in none (False),
    or where they save work (None, :func:`use_fft`).
    """
    stack = spec.stack
    if stack is None:
        raise ValueError("the fast path needs a ConvStack (a stack of Conv1d + activations)")
    acts, derivs = record if record is not None else stack.forward_record(x)
    lengths = [a.shape[-1] for a in acts]
    n_layers = len(stack.layers)
    wanted = set(layers)
    out: dict[str, Window] = {}
    # top: the one-hot of the predicted class at frame t, width 1
    g = torch.zeros(len(t), acts[-1].shape[0], 1, device=x.device, dtype=acts[-1].dtype)
    g[torch.arange(len(t)), c, 0] = 1
    if sensitivity != "logit":
        _output(acts[-1][None, :, :1], sensitivity)  # checks the name
        g[:, :, 0] -= torch.softmax(acts[-1][:, t].T.to(g.dtype), dim=-1)
    start = t.clone()
    if stack.layers[-1].name in wanted:
        out[stack.layers[-1].name] = Window(g.clone(), start.clone())
    for m in range(n_layers, 0, -1):  # layer m = output of conv m; acts[m] is A_m
        layer = stack.layers[m - 1]
        if derivs[m] is not None:  # dY/dZ_m = dY/dA_m * activation'(Z_m)
            g = g * gather_window(derivs[m], start, g.shape[-1])
        w = layer.conv.weight
        if layer.conv.groups > 1:  # grouped / depthwise: direct, per group
            g = F.conv_transpose1d(
                g,
                w,
                stride=layer.spec.stride,
                dilation=layer.spec.dilation,
                groups=layer.conv.groups,
            )
        elif use_fft(layer, g.shape[-1]) if fft is None else fft:
            g = conv_transpose_fft(g, layer)
        elif g.shape[-1] == 1 and layer.spec.dilation == 1 and layer.spec.kernel > 1:
            g = conv_transpose_one_frame(g, w)
        else:  # (1x1 layers too: conv_transpose1d's rounding there is the reference's)
            g = F.conv_transpose1d(g, w, stride=layer.spec.stride, dilation=layer.spec.dilation)
        left, _ = layer.spec.same_padding(lengths[m - 1])
        start = start * layer.spec.stride - left
        if int(start.min()) < 0 or int(start.max()) + g.shape[-1] > lengths[m - 1]:
            idx = start[:, None] + torch.arange(g.shape[-1], device=x.device)
            g = g * ((idx >= 0) & (idx < lengths[m - 1]))[:, None, :].to(g.dtype)  # padding
        name = "input" if m == 1 else stack.layers[m - 2].name
        if name in wanted:
            out[name] = Window(g, start.clone())
        if not (wanted - out.keys()):
            break
    return {n: out[n] for n in layers}
