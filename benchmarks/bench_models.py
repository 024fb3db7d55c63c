"""Per-event sensitivities of other models: gradnap against plain autograd and Captum.

For each model (random weights), the same events (output frames, predicted classes) go
through ``gradnap.sensitivity_batches`` (the backend ``auto`` picks: the fast path for conv
stacks, the two-phase ``hf_ctc`` for wav2vec2-family CTC models, the generic one otherwise;
one memory-budgeted batch of events at a time, each dropped, as a profile does), one
plain ``autograd.grad(..., retain_graph=True)`` per event after one shared forward (hooks
only store each layer's output), and Captum's ``LayerGradientXActivation``, one call per
event (one forward and one backward each), interleaved, median of ``--rounds`` rounds
after one untimed warm-up. gradnap runs every event of the sample; plain and Captum run
``--events`` of them (their cost per event does not depend on how many run); on the fast
path gradnap runs every frame of the utterance, as a profile does.
Peak memory: the process's peak RSS right after gradnap's first "mid" run (before
anything else big runs), model and libraries included.

Models: "small" wav2vec2 (hidden 64, 2 layers, conv_dim 64, 2 s), "mid" wav2vec2 (hidden
256, 4 layers, the base 512-channel conv encoder, 5 s), HuBERT as the mid one, the
torchaudio Wav2Letter structure at its real width on 5 s of MFCCs (fast path), a
DeepSpeech-style conv + GRU (generic path), and "whisper": Whisper tiny.en
(``gradnap.load("whisper-tiny.en")``, real weights) on 10 s of real speech (LibriVox clips
of Debian's pocketsphinx-testdata), tokens/s of gradnap's batched token backward, one plain
backward per token and Captum per token (``bench_whisper.py``'s code; every token for
gradnap and plain, the first ``--events`` for Captum). The last line is one JSON object.

    python benchmarks/bench_models.py [--rounds 3] [--events 8] [--only small,whisper]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

import gradnap

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.profiling.test_stack_models import TorchaudioWav2Letter  # noqa: E402


def hf_model(family, hidden, layers, conv_dim, heads):
    import transformers

    cfg_cls, model_cls = {
        "wav2vec2": (transformers.Wav2Vec2Config, transformers.Wav2Vec2ForCTC),
        "hubert": (transformers.HubertConfig, transformers.HubertForCTC),
    }[family]
    torch.manual_seed(0)
    cfg = cfg_cls(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        conv_dim=(conv_dim,) * 7,
        vocab_size=32,
        pad_token_id=0,
    )
    model = model_cls(cfg).eval()
    labels = ["<pad>"] + [f"s{i}" for i in range(31)]
    return model, gradnap.ModelSpec.from_huggingface(model, labels=labels)


class DeepSpeechish(nn.Module):
    """Two strided Conv1d (+ hardtanh), a bidirectional GRU, a linear head: (B, T, K)."""

    def __init__(self, n_mels=80, hidden=256, classes=29):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Sequential(
            nn.Conv1d(n_mels, 256, 11, stride=2, padding=5),
            nn.Hardtanh(0, 20),
            nn.Conv1d(256, 256, 11, stride=1, padding=5),
            nn.Hardtanh(0, 20),
        )
        self.rnn = nn.GRU(256, hidden, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, classes)

    def forward(self, x):
        h, _ = self.rnn(self.conv(x).transpose(1, 2))
        return self.head(h)


def plain_rate(spec, x, t, c):
    """One forward; one backward per event to the input and every layer's stored output."""
    store = {}
    handles = [
        m.register_forward_hook(lambda _m, _i, o, n=n: store.__setitem__(n, o))
        for n, m in spec.layers.items()
    ]
    t0 = time.perf_counter()
    xx = x.detach().clone().requires_grad_(True)
    try:
        logits, _ = spec.forward_with_activations(xx)  # the logits, gradnap's layouts
    finally:
        for h in handles:
            h.remove()
    tensors = [xx] + [o[0] if isinstance(o, tuple) else o for o in store.values()]
    for tt, cc in zip(t.tolist(), c.tolist()):
        torch.autograd.grad(logits[0, cc, tt], tensors, retain_graph=True, allow_unused=True)
    return len(t) / (time.perf_counter() - t0)


def captum_rate(spec, x, t, c):
    from captum.attr import LayerGradientXActivation

    layers = [m for n, m in spec.layers.items() if n not in ("projection",)]
    model = spec.model

    def forward(inp):
        logits, _ = spec.forward_with_activations(inp)
        return logits.transpose(1, 2)  # (B, T, K): target (t, c)

    attr = LayerGradientXActivation(forward, layers)
    t0 = time.perf_counter()
    for tt, cc in zip(t.tolist(), c.tolist()):
        attr.attribute(x, target=(int(tt), int(cc)))
    del model
    return len(t) / (time.perf_counter() - t0)


def gradnap_rate(spec, x, t, c):
    """Every event's gradients, one memory-budgeted batch at a time, each dropped as the
    plain loop drops its (a profile holds one batch too; holding all 64 of mid's events at
    once is 4.2 GB of whole-utterance gradients whatever computes them)."""
    t0 = time.perf_counter()
    for _ in gradnap.sensitivity_batches(spec, x, t, c):
        pass
    return len(t) / (time.perf_counter() - t0)


def sample(spec, x, n_events):
    with torch.no_grad():
        logits, _ = spec.forward_with_activations(x)
    t_out = logits.shape[-1]
    t = torch.arange(t_out)
    c = logits[0].argmax(0)
    few = torch.linspace(0, t_out - 1, n_events).long()
    return t, c, few, c[few]


def whisper_rates(rounds: int, captum_tokens: int) -> dict:
    """Whisper tiny.en on 10 s of real speech: tokens/s (bench_whisper.py's code)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_whisper import rates, setup

    model, x, n_frames, ids, events, _ = setup(10.0)
    med = rates(model, x, n_frames, ids, events, rounds, captum_tokens)
    paired = med.pop("paired")
    print(
        f"{'whisper':11s} (tokens): gradnap {med['gradnap']:8.2f} tok/s plain "
        f"{med['plain']:8.2f}  captum {med.get('captum', float('nan')):8.2f}  gradnap/plain "
        f"{med['gradnap'] / med['plain']:.2f} (paired by round {paired:.2f})",
        flush=True,
    )
    return {**med, "paired": paired}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--events", type=int, default=8)
    ap.add_argument("--gradnap-events", type=int, default=64)
    ap.add_argument("--only", default="")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    configs = {
        "small": lambda: (hf_model("wav2vec2", 64, 2, 64, 2)[1], 2.0),
        "mid": lambda: (hf_model("wav2vec2", 256, 4, 512, 4)[1], 5.0),
        "hubert_mid": lambda: (hf_model("hubert", 256, 4, 512, 4)[1], 5.0),
        "torchaudio": lambda: (
            gradnap.ModelSpec.from_sequential(
                TorchaudioWav2Letter(29, "mfcc", 13).eval(),
                labels=[f"s{i}" for i in range(29)],
                features="mfcc",
            ),
            5.0,
        ),
        "deepspeech": lambda: (
            gradnap.ModelSpec(
                DeepSpeechish().eval(),
                layers=["conv.1", "conv.3", gradnap.Layer("rnn", item=0), "head"],
                labels=[f"s{i}" for i in range(29)],
                features="log-mel-80",
            ),
            5.0,
        ),
    }
    only = [s for s in args.only.split(",") if s] or [*configs, "whisper"]
    results, peak_mid = {}, None
    for name in only:
        if name == "whisper":
            results[name] = whisper_rates(args.rounds, args.events)
            continue
        spec, seconds = configs[name]()
        wav = 0.1 * torch.randn(int(16000 * seconds)).numpy()
        x = spec.front_end(wav, 16000)[None]
        t, c, few_t, few_c = sample(spec, x, args.events)
        # the fast path runs every event of the utterance, as a profile does (its one
        # forward serves them all); the generic path a sample (its cost per event is fixed)
        n_g = len(t) if spec.stack is not None else min(len(t), args.gradnap_events)
        sel = torch.linspace(0, len(t) - 1, n_g).long()
        g_t, g_c = t[sel], c[sel]
        gradnap_rate(spec, x, g_t[:2], g_c[:2])  # warm-up
        if name == "mid":
            gradnap_rate(spec, x, g_t, g_c)
            peak_mid = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
        plain_rate(spec, x, few_t[:2], few_c[:2])
        rates = {"gradnap": [], "plain": [], "captum": []}
        for _ in range(args.rounds):
            rates["gradnap"].append(gradnap_rate(spec, x, g_t, g_c))
            rates["plain"].append(plain_rate(spec, x, few_t, few_c))
            try:
                rates["captum"].append(captum_rate(spec, x, few_t, few_c))
            except Exception as exc:  # noqa: BLE001 - say it and go on
                print(f"{name}: captum failed: {exc}")
        med = {k: statistics.median(v) for k, v in rates.items() if v}
        results[name] = med
        path, _ = gradnap.profiling.sensitivity.auto_backend(spec)
        print(
            f"{name:11s} ({path:7s}): gradnap {med['gradnap']:8.2f} ev/s  plain {med['plain']:8.2f}"
            f"  captum {med.get('captum', float('nan')):8.2f}  gradnap/plain "
            f"{med['gradnap'] / med['plain']:.2f}",
            flush=True,
        )
    paired = results["whisper"].pop("paired") if "whisper" in results else None
    summary = {
        "rounds": args.rounds,
        "threads": torch.get_num_threads(),
        "events_per_second": results,
    }

    def ratio(cfg, other):
        if cfg in results and other in results[cfg]:
            return round(results[cfg]["gradnap"] / results[cfg][other], 3)
        return None

    summary.update(
        generic_vs_plain_small=ratio("small", "plain"),
        generic_vs_plain_mid=ratio("mid", "plain"),
        generic_vs_plain_hubert_mid=ratio("hubert_mid", "plain"),
        generic_vs_plain_deepspeech=ratio("deepspeech", "plain"),
        peak_memory_gb_mid=None if peak_mid is None else round(peak_mid, 3),
        fast_vs_plain_torchaudio=ratio("torchaudio", "plain"),
        fast_vs_captum_torchaudio=ratio("torchaudio", "captum"),
        whisper_vs_plain=ratio("whisper", "plain"),
        whisper_vs_captum=ratio("whisper", "captum"),
        whisper_vs_plain_paired=None if paired is None else round(paired, 3),
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
