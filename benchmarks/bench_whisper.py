"""Per-token sensitivities of Whisper tiny.en on about 10 s of real speech: gradnap's
batched two-phase backward against one plain autograd backward per token and Captum's
``LayerGradientXActivation`` per token.

Audio: LibriVox clips of Debian's ``pocketsphinx-testdata`` (one reader, public domain)
joined until at least ``--seconds``. Events: the tokens of tiny.en's own greedy transcript
(punctuation dropped). Each method computes the gradient of every event's logit with
respect to the input log-mel and every encoder layer (conv1, conv2, 4 transformer layers):

- gradnap: :func:`gradnap.profiling.tokens.token_crops` (forward, sensitivities, alignment
  and 500 ms crops of every layer);
- plain: one forward of transformers' model with hooks on the same layers (conv1 and conv2
  after their GELU), then one ``torch.autograd.grad(..., retain_graph=True)`` per token
  (sensitivities only, no alignment: a lower bound on its time);
- captum: ``LayerGradientXActivation`` with the input (an Identity in front), conv1, conv2
  (their outputs before GELU: the same work) and the 4 layers, one ``attribute`` call per
  token (a forward and a backward each), on the first ``--captum-tokens`` tokens.

Interleaved, after an untimed warm-up, ``--rounds`` rounds (default 5), each method once
per round, the order reversed every other round (this virtual machine's speed drifts by up
to 1.5x over a minute: a fixed order would hand one method the slower half); tokens/s from
each method's median round. The last line is one JSON object: ``whisper_vs_plain``, the
ratio of the two medians, and ``whisper_vs_plain_paired``, the median over rounds of that
round's ratio (the drift between rounds cancels in it).

    python benchmarks/bench_whisper.py [--seconds 10] [--rounds 5] [--captum-tokens 6]
        [--tokens N] [--batch-events N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import gradnap
from gradnap.decode.whisper import PROMPT, greedy_tokens, token_text, whisper_features
from gradnap.models.whisper import EOT
from gradnap.profiling.tokens import token_crops, token_events

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def speech(seconds: float) -> np.ndarray:
    parts, total = [], 0
    for wav in sorted(LIBRIVOX.glob("*.wav")):
        audio, rate = sf.read(wav, dtype="float32")
        assert rate == 16000, wav
        parts.append(audio)
        total += len(audio)
        if total >= seconds * 16000:
            break
    return np.concatenate(parts)


def layer_modules(model):
    enc = model.model.encoder
    return enc, [enc.conv2, enc.layers[0], *enc.layers]


def plain(model, x, ids, events):
    """One forward with hooks, then one autograd.grad per token."""
    enc = model.model.encoder
    caught = []
    hooks = [
        enc.conv2.register_forward_pre_hook(lambda m, a: caught.append(a[0])),
        enc.layers[0].register_forward_pre_hook(lambda m, a: caught.append(a[0])),
    ]
    hooks += [layer.register_forward_hook(lambda m, a, o: caught.append(o)) for layer in enc.layers]
    try:
        xin = x[None].clone().requires_grad_(True)
        logits = model(input_features=xin, decoder_input_ids=ids).logits[0]
    finally:
        for h in hooks:
            h.remove()
    tensors = [xin, *caught]
    out = []
    for e in events:
        grads = torch.autograd.grad(logits[e.index, e.token], tensors, retain_graph=True)
        out.append(grads[0].sum().item())
    return len(events)


def captum(model, x, ids, events):
    from captum.attr import LayerGradientXActivation

    enc = model.model.encoder
    ident = torch.nn.Identity()
    state = {}

    def forward(features):
        res = model(input_features=ident(features), decoder_input_ids=ids)
        return res.logits[:, state["index"], :]

    attr = LayerGradientXActivation(forward, [ident, enc.conv1, enc.conv2, *enc.layers])
    for e in events:
        state["index"] = e.index
        attr.attribute(x[None], target=e.token)
    return len(events)


def timed(fn, *args):
    t0 = time.perf_counter()
    n = fn(*args)
    return (time.perf_counter() - t0) / n


def setup(seconds: float = 10.0, n_tokens: int = 0):
    """Whisper tiny.en, about ``seconds`` of LibriVox speech, and its token events: returns
    ``(model, x, n_frames, ids (1, N), events, wav)``."""
    torch.manual_seed(0)
    model = gradnap.load("whisper-tiny.en").eval()
    wav = speech(seconds)
    x, n_frames = whisper_features(wav, 16000)
    tokens = greedy_tokens(model, x)
    events = token_events(tokens, model.tokenizer, len(PROMPT), EOT)
    if n_tokens:
        events = events[:n_tokens]
    ids = torch.tensor([[*PROMPT, *tokens]])
    print(f"{len(wav) / 16000:.1f} s, {n_frames} frames, {len(events)} token events, "
          f"{torch.get_num_threads()} threads: {token_text(model, tokens)!r}")  # fmt: skip
    return model, x, n_frames, ids, events, wav


def rates(
    model, x, n_frames, ids, events, rounds: int = 5, captum_tokens: int = 6, batch_events=None
) -> dict:
    """Tokens/s of gradnap, plain and Captum (when installed), interleaved after a
    warm-up, the median of ``rounds`` rounds each (order reversed every other round), and
    ``paired``: the median over rounds of gradnap's rate over plain's in that round."""
    sub = events[:captum_tokens]

    def ours():
        token_crops(model, x, n_frames, ids[0].tolist(), events, max_events=batch_events)
        return len(events)

    runs = {"gradnap": ours, "plain": lambda: plain(model, x, ids, events)}
    try:
        import captum as _  # noqa: F401

        runs["captum"] = lambda: captum(model, x, ids, sub)
    except ImportError:
        pass
    plain(model, x, ids, events[:1])  # warm-up
    ours()
    times = {k: [] for k in runs}
    for r in range(rounds):
        order = list(runs) if r % 2 == 0 else list(runs)[::-1]
        for name in order:
            times[name].append(timed(runs[name]))
        print(
            f"round {r + 1}: " + "  ".join(f"{k} {1 / v[-1]:.2f} tok/s" for k, v in times.items()),
            flush=True,
        )
    out = {k: 1.0 / float(np.median(v)) for k, v in times.items()}
    out["paired"] = float(np.median(np.array(times["plain"]) / np.array(times["gradnap"])))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--captum-tokens", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=0, help="only the first N token events (0: all)")
    ap.add_argument("--batch-events", type=int, default=None, help="gradnap tokens per backward")
    args = ap.parse_args()
    model, x, n_frames, ids, events, wav = setup(args.seconds, args.tokens)
    rate = rates(
        model, x, n_frames, ids, events, args.rounds, args.captum_tokens, args.batch_events
    )
    paired = rate.pop("paired")
    result = {
        "seconds": round(len(wav) / 16000, 2),
        "tokens": len(events),
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        **{f"{k}_tokens_per_s": round(v, 3) for k, v in rate.items()},
        "whisper_vs_plain": round(rate["gradnap"] / rate["plain"], 3),
        "whisper_vs_plain_paired": round(paired, 3),
    }
    if "captum" in rate:
        result["whisper_vs_captum"] = round(rate["gradnap"] / rate["captum"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
