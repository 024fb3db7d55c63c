"""Whisper's front end, greedy decoding and scoring (for :func:`gradnap.load` ("whisper-tiny.en")).

Front end: transformers' ``WhisperFeatureExtractor`` with its defaults (16 kHz, 25 ms Hann
window, 10 ms hop, 80 Slaney mel bins, ``log10`` clamped to 8 below the maximum, then
``(x + 4) / 4``), the input padded with zeros to 30 s = 3000 frames as the encoder
requires. The utterance's own frames are the first ``n_frames`` (100 per second).

Decoding: greedy, prompt ``<|startoftranscript|><|notimestamps|>`` (50257, 50362), the
tokens the model's ``config.json`` suppresses at every step, ``[220, 50256]`` (space,
end of text) also at the first, at most 224 new tokens. Text is compared after
transformers' ``EnglishTextNormalizer`` with an empty spelling map (case, punctuation,
contractions, numbers as digits), on both the reference and the hypothesis.

>>> model = gradnap.load("whisper-tiny.en")                  # doctest: +SKIP
>>> transcribe(model, *load_audio("utt.wav"))               # doctest: +SKIP
' He was not an ill-disposed young man.'
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from scipy.signal import resample_poly
from tqdm.auto import tqdm

from gradnap.data.corpus import Utterance
from gradnap.decode.evaluate import Evaluation
from gradnap.models.whisper import EOT, NO_TIMESTAMPS, SOT

SAMPLE_RATE = 16000
HOP = 160
MAX_SECONDS = 30
N_MELS = 80
N_FRAMES = MAX_SECONDS * SAMPLE_RATE // HOP  # 3000
MAX_NEW_TOKENS = 224
PROMPT = (SOT, NO_TIMESTAMPS)


class AudioTooLong(ValueError):
    """An utterance longer than Whisper's 30 s window; the message names the file."""


@lru_cache(maxsize=1)
def _feature_extractor():
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor()  # built from its defaults: no download


@lru_cache(maxsize=1)
def _normalizer():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})


def normalize_text(text: str) -> str:
    """Whisper's English normalisation (empty spelling map).

    >>> normalize_text("Mr. Dashwood, ten meters!")           # doctest: +SKIP
    'mister dashwood 10 meters'
    """
    return _normalizer()(text)


def mel_frequencies() -> np.ndarray:
    """``(80,)`` centre frequency (Hz) of each of Whisper's mel bins: Slaney mel scale,
    0-8000 Hz, as the feature extractor's filters (``mel_filter_bank(..., mel_scale="slaney")``)."""
    import librosa

    return librosa.mel_frequencies(N_MELS + 2, fmin=0.0, fmax=SAMPLE_RATE / 2)[1:-1]


def whisper_features(
    waveform: np.ndarray, sample_rate: int, source: str | Path = "<waveform>"
) -> tuple[torch.Tensor, int]:
    """``(80, 3000)`` float32 log-mel input and the number of the utterance's own frames.

    ``waveform``: mono ``(N,)`` or soundfile's ``(N, channels)`` (averaged), any rate
    (resampled to 16 kHz, polyphase). Over 30 s raises :class:`AudioTooLong` naming ``source``.
    """
    wav = np.asarray(waveform, dtype=np.float32)
    if wav.ndim == 2:
        wav = wav.mean(axis=1 if wav.shape[1] <= wav.shape[0] else 0)
    if wav.ndim != 1 or len(wav) == 0:
        raise ValueError(f"{source}: expected a non-empty mono waveform, got shape {wav.shape}")
    if sample_rate != SAMPLE_RATE:  # polyphase (scipy): librosa's first call costs seconds
        g = math.gcd(int(sample_rate), SAMPLE_RATE)
        wav = resample_poly(wav, SAMPLE_RATE // g, int(sample_rate) // g).astype(np.float32)
    if len(wav) > MAX_SECONDS * SAMPLE_RATE:
        raise AudioTooLong(
            f"{source}: {len(wav) / SAMPLE_RATE:.1f} s is longer than Whisper's {MAX_SECONDS} s "
            f"window; split it into shorter utterances"
        )
    out = _feature_extractor()(
        wav, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True
    )
    return out["input_features"][0].float(), int(out["attention_mask"].sum())


def _suppression(vocab: int, ids) -> torch.Tensor:
    mask = torch.zeros(vocab, dtype=torch.bool)
    ids = [i for i in ids if 0 <= i < vocab]
    mask[ids] = True
    return mask


def greedy_tokens(
    model,
    features: torch.Tensor,
    max_new_tokens: int = MAX_NEW_TOKENS,
    prompt: tuple[int, ...] = PROMPT,
    eot: int = EOT,
) -> list[int]:
    """Greedy token ids (prompt and end of text left out) for ``(80, 3000)`` features."""
    return greedy_batch(model, features.unsqueeze(0), max_new_tokens, prompt, eot)[0]


@torch.no_grad()
def greedy_batch(
    model,
    features: torch.Tensor,
    max_new_tokens: int = MAX_NEW_TOKENS,
    prompt: tuple[int, ...] = PROMPT,
    eot: int = EOT,
) -> list[list[int]]:
    """Greedy token ids of each of a batch of ``(B, 80, 3000)`` features.

    One encoder pass, then one decoder step per token for the whole batch, with the
    decoder's key/value cache. The sequences run in lockstep (the prompt is the same
    length for all); one that has ended is fed end-of-text tokens whose outputs are
    ignored, which cannot affect the others (nothing mixes across the batch).
    """
    device = next(model.parameters()).device
    vocab = model.config.vocab_size
    every = _suppression(vocab, getattr(model, "suppress_tokens", [])).to(device)
    first = every | _suppression(vocab, getattr(model, "begin_suppress_tokens", [])).to(device)
    enc = model.model.encoder(features.to(device)).last_hidden_state
    n = features.shape[0]
    ids = torch.tensor([list(prompt)] * n, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    past, out = None, [[] for _ in range(n)]
    for step in range(max_new_tokens):
        res = model(encoder_outputs=(enc,), decoder_input_ids=ids, past_key_values=past,
                    use_cache=True)  # fmt: skip
        logits = res.logits[:, -1].float().masked_fill(first if step == 0 else every, -np.inf)
        tokens = logits.argmax(-1)
        done |= tokens == eot
        for i in (~done).nonzero()[:, 0].tolist():
            out[i].append(int(tokens[i]))
        if bool(done.all()):
            break
        tokens = tokens.masked_fill(done, max(eot, 0))
        past, ids = res.past_key_values, tokens.unsqueeze(1)
    return out


def token_text(model, tokens: list[int]) -> str:
    """The text of token ids (special and timestamp tokens, ``>= 50256``, left out)."""
    return model.tokenizer.decode([t for t in tokens if t < EOT])


def transcribe(model, waveform: np.ndarray, sample_rate: int, source: str | Path = "<waveform>",
               max_new_tokens: int = MAX_NEW_TOKENS) -> str:  # fmt: skip
    """Greedy transcript (raw: case and punctuation as the model writes them)."""
    x, _ = whisper_features(waveform, sample_rate, source)
    return token_text(model, greedy_tokens(model, x, max_new_tokens))


def check_lengths(utterances: list[Utterance]) -> None:
    """:class:`AudioTooLong` naming the first utterance over 30 s, from the file headers."""
    for utt in utterances:
        if utt.duration > MAX_SECONDS:
            raise AudioTooLong(
                f"{utt.audio}: {utt.duration:.1f} s is longer than Whisper's {MAX_SECONDS} s "
                f"window; split it into shorter utterances"
            )


def evaluate_whisper(
    model, utterances: list[Utterance], progress: bool = True, batch_size: int = 8
) -> tuple[Evaluation, dict[str, str]]:
    """Greedy transcripts of ``utterances`` (``batch_size`` at a time) scored after
    normalisation.

    Returns the :class:`Evaluation` (normalised references and hypotheses, decoder
    ``"greedy"``) and the raw hypotheses by utterance id. Every utterance is checked for
    length before any is decoded.
    """
    check_lengths(utterances)
    was_training = model.training
    model.eval()
    refs = {u.id: normalize_text(u.text) for u in utterances}
    empty = [u.audio for u in utterances if not refs[u.id].strip()]
    if empty:
        raise ValueError(
            f"{empty[0]}: the reference is empty after Whisper's normalisation "
            f"({len(empty)} such utterance(s)); leave them out of the corpus"
        )
    ev = Evaluation(refs, {u.id: u.speaker for u in utterances}, {"greedy": {}})
    raw: dict[str, str] = {}
    bar = tqdm(total=len(utterances), desc="decoding", unit="utt", disable=not progress,
               leave=False)  # fmt: skip
    for start in range(0, len(utterances), batch_size):
        batch = utterances[start : start + batch_size]
        x = torch.stack([whisper_features(*u.load(), u.audio)[0] for u in batch])
        for utt, tokens in zip(batch, greedy_batch(model, x)):
            raw[utt.id] = token_text(model, tokens)
            ev.hypotheses["greedy"][utt.id] = normalize_text(raw[utt.id])
        bar.update(len(batch))
    bar.close()
    model.train(was_training)
    return ev, raw
