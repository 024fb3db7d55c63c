"""Token events and per-token sensitivities of Whisper (an encoder-decoder model): the
batched two-phase backward against one plain autograd backward per token through
transformers' own model, the alignment and crops against a hand-written loop, and the
events of a transcript."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers", reason="the whisper extra: pip install 'gradnap[whisper]'")

from transformers import WhisperConfig, WhisperForConditionalGeneration  # noqa: E402

from gradnap.profiling import tokens as T  # noqa: E402

N_FRAMES = 101  # own frames of 128 (odd: conv2's last own frame half outside)
PROMPT = (1, 2)


def tiny_model(seed: int = 0) -> WhisperForConditionalGeneration:
    """Random Whisper: d_model 32, 2 heads, 2+2 layers, 64 encoder positions (128 frames)."""
    torch.manual_seed(seed)
    cfg = WhisperConfig(
        vocab_size=40, num_mel_bins=20, d_model=32, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
        decoder_ffn_dim=64, max_source_positions=64, max_target_positions=40,
        pad_token_id=0, bos_token_id=0, eos_token_id=0, decoder_start_token_id=1,
        init_std=0.3,
    )  # fmt: skip
    return WhisperForConditionalGeneration(cfg).eval()


def features(seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(20, 128, generator=g)
    x[:, N_FRAMES:] = -1.5  # padding, as Whisper's front end leaves it (a constant)
    return x


def plain_reference(model, x, ids, events, sensitivity="logit"):
    """One forward through transformers' model with hooks capturing every profiled layer
    (conv1 after its GELU = conv2's input; conv2 after its GELU = layer 0's input minus the
    positions), then one ``autograd.grad`` per token."""
    enc = model.model.encoder
    caught = {}
    hooks = [enc.conv2.register_forward_pre_hook(lambda m, a: caught.__setitem__("conv1", a[0]))]
    hooks.append(
        enc.layers[0].register_forward_pre_hook(lambda m, a: caught.__setitem__("conv2", a[0]))
    )
    for i, layer in enumerate(enc.layers):
        hooks.append(
            layer.register_forward_hook(
                lambda m, a, out, i=i: caught.__setitem__(f"encoder.layers.{i}", out)
            )
        )
    try:
        xin = x[None].clone().requires_grad_(True)
        logits = model(input_features=xin, decoder_input_ids=torch.tensor([ids])).logits[0]
    finally:
        for h in hooks:
            h.remove()
    names = ["input", "conv1", "conv2"] + [f"encoder.layers.{i}" for i in range(len(enc.layers))]
    tensors = [xin] + [caught[n] for n in names[1:]]
    m = (N_FRAMES + 1) // 2
    grads = {n: [] for n in names}
    for e in events:
        y = logits[e.index]
        y = y if sensitivity == "logit" else torch.log_softmax(y, -1)
        gs = torch.autograd.grad(y[e.token], tensors, retain_graph=True)
        for n, g in zip(names, gs):
            g = g[0]
            grads[n].append(g[:, :N_FRAMES] if n in ("input", "conv1") else g[:m].T)
    acts = {
        "input": x[:, :N_FRAMES],
        "conv1": caught["conv1"][0, :, :N_FRAMES].detach(),
        "conv2": (caught["conv2"][0, :m] - enc.embed_positions.weight[:m]).T.detach(),
        **{n: caught[n][0, :m].T.detach() for n in names[3:]},
    }
    return acts, {n: torch.stack(v) for n, v in grads.items()}


def decoded(model, x, n=8):
    from gradnap.decode.whisper import greedy_tokens

    toks = greedy_tokens(model, x, n, PROMPT, eot=-1)
    events = [T.TokenEvent(len(PROMPT) - 1 + k, t, str(t), k) for k, t in enumerate(toks)]
    return [*PROMPT, *toks], events


@pytest.mark.parametrize("sensitivity", ["logit", "log_prob"])
def test_sensitivities_equal_one_plain_backward_per_token(sensitivity):
    """In float64, so that the comparison sees the math, not float32's rounding: in float32
    the plain backward itself lies 2-3e-6 x max|G| from the float64 value on this model
    (its spiky random attention), as far as ours does (next test)."""
    model = tiny_model().double()
    x = features().double()
    ids, events = decoded(model, x)
    assert len(set(e.token for e in events)) > 2
    # 3 tokens per batched backward: several chunks, the last one partial
    budget = 3 * T.EncoderTape(model.model.encoder, x, N_FRAMES).bytes_per_event()
    got = T.token_sensitivities(model, x, N_FRAMES, ids, events, sensitivity, max_memory=budget)
    acts, ref = plain_reference(model, x, ids, events, sensitivity)
    assert list(got.gradients) == list(ref)
    for name in ref:
        assert got.gradients[name].shape == ref[name].shape, name
        scale = ref[name].abs().max()
        assert scale > 0, name
        err = (got.gradients[name] - ref[name]).abs().max()
        assert err <= 1e-6 * scale, (name, float(err / scale))
        assert got.gradients[name].dtype == torch.float64
        torch.testing.assert_close(got.activations[name], acts[name])
    m = (N_FRAMES + 1) // 2
    assert got.frame_ms == {n: 10.0 if n in ("input", "conv1") else 20.0 for n in ref}
    assert got.gradients["input"].shape == (len(events), 20, N_FRAMES)
    assert got.gradients["encoder.layers.1"].shape == (len(events), 32, m)


def test_batching_does_not_matter():
    model = tiny_model()
    x = features()
    ids, events = decoded(model, x, 5)
    one = T.token_sensitivities(model, x, N_FRAMES, ids, events, max_memory=1)
    all_ = T.token_sensitivities(model, x, N_FRAMES, ids, events)
    for name in one.gradients:
        torch.testing.assert_close(one.gradients[name], all_.gradients[name], atol=1e-7, rtol=1e-5)


def test_float32_as_close_to_float64_as_the_plain_backward():
    """float32 (what runs): ours and the plain backward are equally far from float64."""
    x64 = features().double()
    ids, events = decoded(tiny_model().double(), x64, 4)
    _, truth = plain_reference(tiny_model().double(), x64, ids, events)
    model, x = tiny_model(), features()
    got = T.token_sensitivities(model, x, N_FRAMES, ids, events)
    _, ref = plain_reference(model, x, ids, events)
    for name, t in truth.items():
        scale = t.abs().max()
        ours = (got.gradients[name].double() - t).abs().max() / scale
        plain = (ref[name].double() - t).abs().max() / scale
        assert ours <= max(2 * plain, 1e-6), (name, float(ours), float(plain))
