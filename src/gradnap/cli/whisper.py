"""``model-info`` and ``eval`` for Whisper (``--model whisper-tiny.en``)."""

from __future__ import annotations

from rich.table import Table

from gradnap.cli.common import console


def whisper_info(model) -> None:
    """Print the encoder's and decoder's layers, their sizes and time axes, and the source."""
    from gradnap.decode.whisper import HOP, N_FRAMES, SAMPLE_RATE
    from gradnap.models.registry import MODELS

    cfg = model.config
    enc, dec = model.model.encoder, model.model.decoder
    table = Table(title=f"{model.gradnap_name}: transformers' WhisperForConditionalGeneration")
    for col in ("layer", "module", "kind", "output", "parameters", "frame"):
        table.add_column(col, justify="right")

    def n(module) -> str:
        return f"{sum(p.numel() for p in module.parameters()):,}"

    ms = 1000 * HOP / SAMPLE_RATE
    table.add_row("input", "-", f"log-mel, {N_FRAMES} frames (30 s)", str(cfg.num_mel_bins),
                  "0", f"{ms:g} ms")  # fmt: skip
    table.add_row("conv1", "model.encoder.conv1", "Conv1d k3 + GELU", str(cfg.d_model),
                  n(enc.conv1), f"{ms:g} ms")  # fmt: skip
    table.add_row("conv2", "model.encoder.conv2", "Conv1d k3 s2 + GELU", str(cfg.d_model),
                  n(enc.conv2), f"{2 * ms:g} ms")  # fmt: skip
    for i, layer in enumerate(enc.layers):
        kind = f"self-attention {cfg.encoder_attention_heads} heads, FFN {cfg.encoder_ffn_dim}"
        table.add_row(f"encoder{i}", f"model.encoder.layers.{i}", kind, str(cfg.d_model),
                      n(layer), f"{2 * ms:g} ms")  # fmt: skip
    table.add_row("tokens", "model.decoder.embed_tokens", "token embeddings",
                  str(cfg.d_model), n(dec.embed_tokens), "token")  # fmt: skip
    for i, layer in enumerate(dec.layers):
        kind = f"self + cross attention {cfg.decoder_attention_heads} heads"
        table.add_row(f"decoder{i}", f"model.decoder.layers.{i}", kind, str(cfg.d_model),
                      n(layer), "token")  # fmt: skip
    table.add_row("logits", "proj_out (tied to the token embeddings)", "Linear",
                  f"{cfg.vocab_size:,}", "0 (tied)", "token")  # fmt: skip
    console.print(table)
    total = sum(p.numel() for p in model.parameters())
    console.print(f"parameters: {total:,} ({total / 1e6:.2f} M)")
    console.print(
        f"encoder positions: {cfg.max_source_positions}, decoder positions: "
        f"{cfg.max_target_positions}, vocabulary: {cfg.vocab_size:,}"
    )
    console.print(f"weights: {MODELS[model.gradnap_name].source}")


def whisper_eval(load_model, data, fail):
    """Greedy transcripts of a corpus, scored after Whisper's English normalisation; an
    utterance over 30 s is refused before the model is loaded."""
    from gradnap.audio.io import AudioError
    from gradnap.decode.whisper import check_lengths, evaluate_whisper

    try:
        check_lengths(list(data))
        ev, _ = evaluate_whisper(load_model(), list(data))
    except (AudioError, ValueError) as exc:  # AudioTooLong, a reference normalised away
        fail(str(exc))
    return ev
