"""Token events of an encoder-decoder model (Whisper): events, per-token sensitivities,
alignment and crops on the encoder's time axis.

METHOD.md's parts, for a model whose outputs are tokens rather than frames:

- "Objects" -> :func:`token_events`: an event is one token of the model's own greedy
  transcript, teacher-forced; its output index is the decoder position whose logits predict
  it (``len(prompt) - 1 + k`` for the k-th decoded token), its class the token id. Special
  tokens are not events; tokens of punctuation only are not events by default **[choice]**
  (``drop_punctuation``). Group name: the token's text, a leading space written ``▁``.
- "Sensitivity" -> :func:`token_sensitivities`: ``G_l = d Y[c_e, i_e] / d A_l`` of the
  token's logit (default **[choice]**; ``sensitivity="log_prob"`` for its log-probability)
  for the input log-mel and every encoder layer (``conv1`` and ``conv2`` after their GELU,
  each ``encoder.layers.<i>`` output), on the utterance's own frames only (never the
  padding to 30 s). Batched over tokens, memory-budgeted (:mod:`.whisper_backward`).
- "Alignment" -> :func:`align_tokens`: ``tau_l = argmax_tau sum_c |A_l G_l|`` over the
  utterance's own frames (input: ``sum_f |G_0|``), a window of ``window_ms`` (default
  500 ms **[choice]**: attention makes the gradient's support the whole utterance, so no
  receptive-field width exists) cropped from A and G around tau, zero outside the utterance.

>>> model = gradnap.load("whisper-tiny.en")                            # doctest: +SKIP
>>> x, n = whisper_features(*soundfile.read("utt.wav"))                # doctest: +SKIP
>>> crops, events = whisper_token_crops(model, x, n)                  # doctest: +SKIP
>>> crops["encoder.layers.3"].gradient.shape    # (tokens, 384 channels, 25 frames of 20 ms)
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from gradnap.profiling.whisper_backward import EncoderTape
from gradnap.profiling.whisper_probe import decoder_on_probe

DEFAULT_MAX_MEMORY = 2 * 1024**3
# tokens per batched backward on the CPU when not given: the memory budget alone would
# batch 40 tokens of tiny.en at once, whose (E, 1500, 1536) intermediates leave the cache
# and page-fault; 1, 2 and 4 measured alike (benchmarks/bench_whisper.py --batch-events N)
CPU_BATCH_EVENTS = 4
DEFAULT_WINDOW_MS = 500.0


@dataclass(frozen=True)
class TokenEvent:
    """One decoded token: ``index`` the decoder position whose logits predict it (the
    output index), ``token`` its id (the class), ``name`` its group name (``"▁He"``),
    ``k`` its place in the decoded transcript (0-based)."""

    index: int
    token: int
    name: str
    k: int


def token_name(text: str) -> str:
    """A token's group name: its text with a leading space written ``▁`` (``" He"`` ->
    ``"▁He"``), as SentencePiece writes word starts."""
    return "▁" + text[1:] if text.startswith(" ") else text


def is_punctuation(text: str) -> bool:
    """True for a token whose text, spaces aside, is nothing but punctuation (Unicode
    category P*: ``","``, ``" ..."``, ``"?\""``), or only spaces."""
    return all(unicodedata.category(ch).startswith("P") for ch in text.strip())


def token_events(
    tokens: Sequence[int],
    tokenizer,
    prompt_length: int = 2,
    special: int | Sequence[int] = 50256,
    drop_punctuation: bool = True,
) -> list[TokenEvent]:
    """Events of a decoded transcript (prompt and end of text left out, as
    :func:`gradnap.decode.whisper.greedy_tokens` returns it).

    ``tokenizer``: anything with ``decode(list[int]) -> str`` (a ``tokenizers.Tokenizer``).
    ``special``: the first special id (every id from it on is special: Whisper's end of
    text 50256, start of transcript, languages, tasks, timestamps), or the special ids.
    The k-th token's output index is ``prompt_length - 1 + k``.

    >>> class Tok:
    ...     def decode(self, ids): return "".join({5: " He", 6: ",", 7: "llo"}[i] for i in ids)
    >>> [(e.index, e.token, e.name) for e in token_events([5, 7, 6, 9], Tok(), special=8)]
    [(1, 5, '▁He'), (2, 7, 'llo')]
    """
    is_special = (lambda t: t >= special) if isinstance(special, int) else set(special).__contains__
    events = []
    for k, tok in enumerate(tokens):
        tok = int(tok)
        if is_special(tok):
            continue
        text = tokenizer.decode([tok])
        if drop_punctuation and is_punctuation(text):
            continue
        events.append(TokenEvent(prompt_length - 1 + k, tok, token_name(text), k))
    return events


@dataclass
class TokenSensitivities:
    """Per-layer activations and per-token gradients on the utterance's own frames.

    ``activations[layer]``: (C_l, T_l) (input: X itself, n_mels x n_frames); ``gradients
    [layer]``: (E, C_l, T_l), event order as given; ``frame_ms[layer]``: the layer's frame
    hop in ms (10 for input and conv1, 20 from conv2 on: frame t of a layer is centred at
    t x frame_ms).
    """

    activations: dict[str, torch.Tensor]
    gradients: dict[str, torch.Tensor]
    frame_ms: dict[str, float]


@dataclass
class TokenCrops:
    """One layer's aligned windows (METHOD.md "Alignment"): ``activation`` and ``gradient``
    (E, C, W), zero outside the utterance; ``tau`` (E,) the alignment frame on the layer's
    own frames; ``offsets`` (W,) frame offsets from tau; ``frame_ms`` the frame hop (ms), so
    offset k lies at k x frame_ms ms from the alignment time tau x frame_ms."""

    activation: torch.Tensor
    gradient: torch.Tensor
    tau: torch.Tensor
    offsets: torch.Tensor
    frame_ms: float

    @property
    def seconds(self) -> torch.Tensor:
        """(E,) alignment times in seconds (``tau x frame_ms / 1000``; a frame is centred
        at its index times the hop, conv2's frame t at conv1's 2t): what a grouping that
        labels a token by the phone or word at its aligned time needs."""
        return self.tau.to(torch.float64) * (self.frame_ms / 1000.0)


def _cotangents(model, hidden: torch.Tensor, events: Sequence[TokenEvent], sensitivity: str):
    """Cotangents of the decoder's last hidden state (E, N, d) whose vjp is d Y / d hidden
    for each event: the tied output projection's row ``W[c]`` at position ``i`` (logit) or
    ``W[c] - softmax(Y_i) W`` (log-probability). Exact because the projection is linear."""
    w = model.get_output_embeddings().weight
    bias = getattr(model.get_output_embeddings(), "bias", None)
    idx = torch.tensor([e.index for e in events], device=hidden.device)
    cls = torch.tensor([e.token for e in events], device=hidden.device)
    rows = w[cls].detach().clone()
    if sensitivity == "log_prob":
        with torch.no_grad():
            logits = hidden[idx] @ w.T + (bias if bias is not None else 0)
            rows -= torch.softmax(logits, -1) @ w
    elif sensitivity != "logit":
        raise ValueError(f"sensitivity must be 'logit' or 'log_prob', got {sensitivity!r}")
    cot = hidden.new_zeros(len(events), *hidden.shape)
    cot[torch.arange(len(events)), idx] = rows
    return cot


def _check_events(events: Sequence[TokenEvent], n_positions: int, vocab: int) -> None:
    for e in events:
        if not 0 <= e.index < n_positions or not 0 <= e.token < vocab:
            raise ValueError(f"event {e} lies outside {n_positions} positions / {vocab} classes")


def iter_token_gradients(
    model,
    features: torch.Tensor,
    n_frames: int,
    decoder_ids: Sequence[int],
    events: Sequence[TokenEvent],
    sensitivity: str = "logit",
    max_memory: int = DEFAULT_MAX_MEMORY,
    tape: EncoderTape | None = None,
    max_events: int | None = None,
) -> Iterator[tuple[slice, EncoderTape, dict[str, torch.Tensor]]]:
    """Yield ``(events slice, tape, {layer: G (e, C_l, T_l)})`` chunk by chunk, as many
    tokens per chunk as ``max_memory`` bytes of backward working memory allow (at least 1),
    and at most ``max_events`` (``--batch-events N``; None: :data:`CPU_BATCH_EVENTS` on the
    CPU, no bound on a GPU).

    ``decoder_ids``: the teacher-forced decoder input, prompt then the decoded tokens.
    """
    if model.training:
        raise ValueError("put the model in eval mode (model.eval()) before profiling")
    tape = tape or EncoderTape(model.model.encoder, features, n_frames)
    ids = torch.tensor([list(decoder_ids)], device=tape.enc.device)
    _check_events(events, ids.shape[1], model.config.vocab_size)
    if not events:
        return
    if max_events is not None and int(max_events) < 1:
        raise ValueError(f"max_events must be at least 1, not {max_events!r}")
    hidden, delta = decoder_on_probe(model, ids, tape.enc)
    chunk = max(1, int(max_memory // tape.bytes_per_event()))
    if max_events is None and tape.enc.device.type == "cpu":
        max_events = CPU_BATCH_EVENTS
    if max_events is not None:
        chunk = min(chunk, int(max_events))
    for start in range(0, len(events), chunk):
        part = slice(start, min(start + chunk, len(events)))
        cot = _cotangents(model, hidden, events[part], sensitivity)
        # the small decoder backward to d enc, one token at a time: batched with vmap it
        # measured 1.2-1.5x slower per token (N x d matrices too small to gain from it)
        d_enc = tape.workspace("d_enc", (len(cot), *tape.enc.shape), tape.enc)
        for j, c in enumerate(cot):
            d_enc[j] = torch.autograd.grad(hidden, delta, c, retain_graph=True)[0]
        yield part, tape, tape.backward(d_enc)


def token_sensitivities(
    model,
    features: torch.Tensor,
    n_frames: int,
    decoder_ids: Sequence[int],
    events: Sequence[TokenEvent],
    sensitivity: str = "logit",
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> TokenSensitivities:
    """METHOD.md "Sensitivity" for token events of a ``WhisperForConditionalGeneration``.

    ``features``: (n_mels, 2 x max_source_positions) log-mel (the utterance's own first
    ``n_frames`` frames of 10 ms, then padding, as
    :func:`gradnap.decode.whisper.whisper_features` returns). ``decoder_ids``: prompt then
    the decoded tokens; ``events``: from :func:`token_events`. ``max_memory``: bytes of
    working memory per batched backward (default 2 GB; the per-layer gradients returned
    are extra: E x (sum of C_l x T_l) x 4 bytes).

    Returns gradients of every layer on the utterance's own frames (see
    :class:`TokenSensitivities`). The model must be in eval mode.
    """
    grads: dict[str, list[torch.Tensor]] = {}
    tape = EncoderTape(model.model.encoder, features, n_frames)
    for _, _, g in iter_token_gradients(
        model, features, n_frames, decoder_ids, events, sensitivity, max_memory, tape
    ):
        for name, value in g.items():
            grads.setdefault(name, []).append(value)
    out = {
        name: torch.cat(grads[name]) if name in grads else a.new_zeros(0, *a.shape)
        for name, a in tape.activations.items()
    }
    return TokenSensitivities(dict(tape.activations), out, dict(tape.frame_ms))


def window_frames(window_ms: float, frame_ms: float) -> int:
    """Crop width in a layer's frames: ``round(window_ms / frame_ms)`` (500 ms: 50 frames of
    10 ms, 25 of 20 ms), at least 1."""
    return max(1, round(window_ms / frame_ms))


def crop_offsets(width: int) -> torch.Tensor:
    """METHOD.md's offsets of a crop of ``width`` frames: ``-(W // 2) .. W - W // 2 - 1``."""
    return torch.arange(-(width // 2), width - width // 2)


def align_layer(
    activation: torch.Tensor,
    gradient: torch.Tensor,
    width: int,
    is_input: bool,
    frame_ms: float = 20.0,
) -> TokenCrops:
    """Align and crop one layer (METHOD.md "Alignment").

    ``activation``: (C, T) on the utterance's own frames; ``gradient``: (E, C, T).
    ``tau = argmax_t sum_c |A G|`` (``is_input``: ``sum_c |G|``), earliest on ties; crops of
    ``width`` frames at ``tau + crop_offsets(width)``, zero outside ``0..T-1``.
    """
    e, c, t = gradient.shape
    if is_input:
        score = gradient.abs().sum(1)
    else:
        score = (gradient * activation).abs().sum(1)
    tau = score.argmax(1)
    off = crop_offsets(width).to(tau.device)
    pos = tau[:, None] + off  # (E, W)
    valid = ((pos >= 0) & (pos < t)).to(gradient.dtype)
    safe = pos.clamp(0, t - 1)
    g = torch.gather(gradient, 2, safe[:, None, :].expand(e, c, width)) * valid[:, None]
    a = activation[:, safe].permute(1, 0, 2) * valid[:, None]
    return TokenCrops(a, g, tau, off, frame_ms)


def align_tokens(
    sens: TokenSensitivities, window_ms: float = DEFAULT_WINDOW_MS
) -> dict[str, TokenCrops]:
    """Every layer of :func:`token_sensitivities` aligned and cropped to ``window_ms``."""
    return {
        name: align_layer(
            sens.activations[name],
            grad,
            window_frames(window_ms, sens.frame_ms[name]),
            name == "input",
            sens.frame_ms[name],
        )
        for name, grad in sens.gradients.items()
    }


def token_crops(
    model,
    features: torch.Tensor,
    n_frames: int,
    decoder_ids: Sequence[int],
    events: Sequence[TokenEvent],
    sensitivity: str = "logit",
    window_ms: float = DEFAULT_WINDOW_MS,
    max_memory: int = DEFAULT_MAX_MEMORY,
    max_events: int | None = None,
) -> dict[str, TokenCrops]:
    """:func:`token_sensitivities` then :func:`align_tokens`, chunk by chunk, so only the
    crops of all events are held (not every event's full-utterance gradients)."""
    parts: dict[str, list[TokenCrops]] = {}
    for _, tape, grads in iter_token_gradients(
        model,
        features,
        n_frames,
        decoder_ids,
        events,
        sensitivity,
        max_memory,
        max_events=max_events,
    ):
        for name, g in grads.items():
            width = window_frames(window_ms, tape.frame_ms[name])
            parts.setdefault(name, []).append(
                align_layer(tape.activations[name], g, width, name == "input", tape.frame_ms[name])
            )
    return {
        name: TokenCrops(
            torch.cat([p.activation for p in ps]),
            torch.cat([p.gradient for p in ps]),
            torch.cat([p.tau for p in ps]),
            ps[0].offsets,
            ps[0].frame_ms,
        )
        for name, ps in parts.items()
    }


def whisper_token_crops(
    model,
    features: torch.Tensor,
    n_frames: int,
    sensitivity: str = "logit",
    window_ms: float = DEFAULT_WINDOW_MS,
    max_memory: int = DEFAULT_MAX_MEMORY,
    drop_punctuation: bool = True,
) -> tuple[dict[str, TokenCrops], list[TokenEvent]]:
    """One utterance end to end for Whisper tiny.en (``gradnap.load("whisper-tiny.en")``):
    greedy transcript (:mod:`gradnap.decode.whisper`), its token events, then
    :func:`token_crops`. Returns the crops per layer and the events (in crop order)."""
    from gradnap.decode.whisper import PROMPT, greedy_tokens
    from gradnap.models.whisper import EOT

    tokens = greedy_tokens(model, features)
    events = token_events(tokens, model.tokenizer, len(PROMPT), EOT, drop_punctuation)
    crops = token_crops(
        model, features, n_frames, [*PROMPT, *tokens], events, sensitivity, window_ms, max_memory
    )
    return crops, events
