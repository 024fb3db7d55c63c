"""Profiles of token events (Whisper): :class:`TokenProfiler`, the token counterpart of
:class:`gradnap.profiling.run.Profiler`.

Per utterance: the model's greedy transcript, its token events and their per-layer
gradients (:func:`gradnap.profiling.tokens.iter_token_gradients`), chunk by chunk. Each
chunk is aligned and cropped by the CTC path's own :func:`gradnap.profiling.align.align`
(the gradients on the utterance's own frames are one window starting at frame 0; the crop
is ``window_ms`` wide, :func:`gradnap.profiling.tokens.window_frames`) and summed by the
same :class:`~gradnap.profiling.accumulate.ProfileAccumulator`, so the result (and every
variant: GradNAP, NAvAI, NAP, Saliency) has the Wav2Letter results' format.

Groups of an event: ``token:<name>`` (:class:`~gradnap.profiling.groupings.Token`), and
the time groupings (phoneme, word, manner, speaker: ``on_tokens``) at the event's
alignment time in the input layer (``tau_0`` x 10 ms, ``tau_0 = argmax sum_f |G_0|``),
looked up as the CTC path looks up an output frame (a frame centred at that time).
grapheme, target and correct label CTC output frames: refused.
"""

from __future__ import annotations

import torch

from gradnap._version import __version__
from gradnap.profiling.accumulate import ProfileAccumulator
from gradnap.profiling.align import align
from gradnap.profiling.groupings import EventContext, group_name, make_groupings
from gradnap.profiling.halves import SplitHalfSums
from gradnap.profiling.method import (
    DEFAULT_VARIANTS,
    make_variants,
    needed_sums,
)
from gradnap.profiling.sensitivity import Window
from gradnap.profiling.settings import check_choices
from gradnap.profiling.tokens import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_WINDOW_MS,
    TokenEvent,
    iter_token_gradients,
    token_events,
    window_frames,
)


def is_token_model(model) -> bool:
    """Whether ``model`` is an encoder-decoder whose events are tokens (Whisper)."""
    return getattr(getattr(model, "config", None), "model_type", None) == "whisper"


def encoder_layers(model) -> list[str]:
    """The profiled layers of a Whisper encoder: input, conv1, conv2, encoder.layers.<i>."""
    n = len(model.model.encoder.layers)
    return ["input", "conv1", "conv2", *(f"encoder.layers.{i}" for i in range(n))]


def frame_ms(layer: str) -> float:
    """A Whisper encoder layer's frame hop in ms (10 for input and conv1, else 20)."""
    return 10.0 if layer in ("input", "conv1") else 20.0


class WhisperFrontEnd:
    """The corpus driver's front end for Whisper: ``(wav, sr) -> (features, n_frames)``
    (:func:`gradnap.decode.whisper.whisper_features`)."""

    def __call__(self, wav, sr):
        from gradnap.decode.whisper import whisper_features

        return whisper_features(wav, sr)


def token_labels(
    groupings, events: list[TokenEvent], tau_input: torch.Tensor, n_input: int,
    speaker=None, alignment=None, transcript=None,
) -> list[list[str]]:  # fmt: skip
    """Each token event's group names: ``token:<name>``, and each time grouping's label
    at the input frame ``tau_input[e]`` (10 ms frames centred at ``t`` x 10 ms)."""
    ctx = EventContext(
        torch.zeros(n_input, dtype=torch.long),
        None,
        [],
        frame_seconds=frame_ms("input") / 1000.0,
        speaker=speaker,
        alignment=alignment,
        transcript=transcript,
    )
    frames = tau_input.tolist()
    columns = []
    for g in groupings:
        if g.name == "token":
            columns.append((g.name, [e.name for e in events]))
        else:
            columns.append((g.name, g.labels(ctx, frames)))
    return [
        [group_name(name, col[e]) for name, col in columns if col[e] is not None]
        for e in range(len(events))
    ]


def check_token_options(backend="auto", crop_width="support", include_blank=False) -> None:
    """Refuse the CTC path's options that token events have no use for."""
    if backend != "auto":
        raise ValueError("--backend: token models (Whisper) have one gradient path; leave it auto")
    if crop_width != "support":
        raise ValueError("--crop-width: token models (Whisper) crop 500 ms windows")
    if include_blank:
        raise ValueError("--include-blank: token models (Whisper) have no blank events")


def check_token_groupings(groupings, speaker=None, alignment=None, transcript=None) -> None:
    """Refuse groupings of CTC output frames, and time groupings whose data is missing."""
    bad = [g.name for g in groupings if not g.on_tokens]
    if bad:
        ok = ", ".join(sorted(g for g, c in _registry().items() if c.on_tokens))
        raise ValueError(
            f"grouping(s) {', '.join(bad)} label CTC output frames; a token model "
            f"(whisper-tiny.en) is grouped by {ok}"
        )
    ctx = EventContext(
        torch.zeros(0), None, [], speaker=speaker, alignment=alignment, transcript=transcript
    )
    for g in groupings:
        if g.name != "token":
            g.check(ctx)


def _registry():
    from gradnap.profiling.groupings import GROUPINGS

    return GROUPINGS


class TokenProfiler(SplitHalfSums):
    """Streaming profiles of token events: ``update`` one utterance at a time, ``merge``,
    ``result`` (the interface of :class:`gradnap.profiling.run.Profiler`).

    Parameters: ``model`` (a ``WhisperForConditionalGeneration``, e.g.
    ``gradnap.load("whisper-tiny.en")``), ``layers`` (default all), ``group_by`` (token,
    phoneme, word, manner, speaker), ``device``, ``neurons``, ``variants``,
    ``mask_scale``, ``navai_align`` and ``sensitivity`` (as for ``Profiler``),
    ``window_ms`` (crop width, default 500 ms **[choice]**), ``max_memory`` (bytes per
    batched backward), ``max_events`` (tokens per batched backward at most; None: as
    many as ``max_memory`` allows, at most ``tokens.CPU_BATCH_EVENTS`` = 4 on the CPU),
    ``drop_punctuation``. ``prompt``, ``eot``, ``special``, ``max_new_tokens`` and
    ``tokenizer`` default to Whisper tiny.en's (a test's tiny
    random model passes its own).
    """

    front_end = WhisperFrontEnd()

    def __init__(
        self,
        model,
        layers=None,
        group_by=("token",),
        device="cpu",
        neurons=None,
        variants=DEFAULT_VARIANTS,
        mask_scale="window",
        navai_align="gradient",
        sensitivity="logit",
        window_ms=DEFAULT_WINDOW_MS,
        max_memory=DEFAULT_MAX_MEMORY,
        max_events=None,
        drop_punctuation=True,
        prompt=None,
        eot=None,
        special=None,
        max_new_tokens=None,
        tokenizer=None,
    ):
        self.model = model
        self.layers = layers
        self.group_by = group_by
        self.device = device
        self.neurons = neurons
        self.variants = variants
        self.mask_scale = mask_scale
        self.navai_align = navai_align
        self.sensitivity = sensitivity
        self.window_ms = window_ms
        self.max_memory = max_memory
        self.max_events = max_events
        self.drop_punctuation = drop_punctuation
        self.prompt = prompt
        self.eot = eot
        self.special = special
        self.max_new_tokens = max_new_tokens
        self.tokenizer = tokenizer

    def _validate(self) -> None:
        if "variants_" in self.__dict__:
            return
        from gradnap.decode import whisper as W

        self.groupings_ = make_groupings(self.group_by)
        check_token_groupings(self.groupings_, speaker="", alignment=object(), transcript="")
        names = encoder_layers(self.model)
        layers = names if self.layers is None else list(self.layers)
        unknown = [n for n in layers if n not in names]
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown}; the layers are {names}")
        check_choices(self.navai_align, self.sensitivity, self.mask_scale)
        if self.max_events is not None and not (
            isinstance(self.max_events, int) and self.max_events >= 1
        ):
            raise ValueError(f"max_events must be a positive int or None, not {self.max_events!r}")
        if not float(self.window_ms) > 0:
            raise ValueError(f"window_ms must be positive, not {self.window_ms!r}")
        self.variants_ = make_variants(
            self.variants, mask_scale=self.mask_scale, navai_align=self.navai_align
        )
        sums = needed_sums(self.variants_)
        self.rules_ = tuple(dict.fromkeys(s.align for s in sums))
        self.gradient_rules_ = tuple(
            dict.fromkeys(s.align for s in sums if s.kind in ("gradient", "saliency"))
        )
        self.layers_ = layers
        self.widths_ = {n: window_frames(self.window_ms, frame_ms(n)) for n in layers}
        self.prompt_ = tuple(W.PROMPT if self.prompt is None else self.prompt)
        self.eot_ = W.EOT if self.eot is None else self.eot
        self.special_ = W.EOT if self.special is None else self.special
        self.max_new_tokens_ = (
            W.MAX_NEW_TOKENS if self.max_new_tokens is None else self.max_new_tokens
        )
        self.tokenizer_ = self.tokenizer if self.tokenizer is not None else self.model.tokenizer
        self.device_ = torch.device(self.device)
        self.halves_ = tuple(self._accumulator() for _ in range(2))
        self.coverage_: dict[str, list[int]] = {}
        self.utterances_ = 0
        self.model.to(self.device_).eval()

    def transcribe(self, x) -> list[int]:
        """The model's greedy transcript of ``x`` (features, or ``(features, n_frames)``):
        the decoded token ids, prompt and end of text left out."""
        from gradnap.decode.whisper import greedy_tokens

        self._validate()
        x = x[0] if isinstance(x, tuple) else x
        x = x.to(self.device_, torch.float32)
        return greedy_tokens(self.model, x, self.max_new_tokens_, self.prompt_, self.eot_)

    def update(
        self, x, speaker=None, alignment=None, transcript=None, index=None, n_frames=None,
        tokens=None,
    ) -> int:  # fmt: skip
        """Profile one utterance: ``x`` its padded log-mel ``(n_mels, 2 x positions)`` and
        ``n_frames`` its own frames (or ``x = (features, n_frames)``, as the corpus
        driver's :class:`WhisperFrontEnd` gives). ``tokens`` (optional) replaces the
        model's own greedy transcript: the teacher-forced tokens whose events are profiled
        (the sanity check keeps the trained model's this way). Returns its number of token
        events."""
        self._validate()
        if isinstance(x, tuple):
            x, n_frames = x
        if n_frames is None:
            raise ValueError("n_frames: the utterance's own frames (whisper_features gives it)")
        check_token_groupings(self.groupings_, speaker, alignment, transcript)
        x = x.to(self.device_, torch.float32)
        tokens = self.transcribe(x) if tokens is None else [int(t) for t in tokens]
        events = token_events(
            tokens, self.tokenizer_, len(self.prompt_), self.special_, self.drop_punctuation
        )
        acc = self.halves_[(self.utterances_ if index is None else index) % 2]
        for part, tape, grads in iter_token_gradients(
            self.model, x, int(n_frames), [*self.prompt_, *tokens], events,
            self.sensitivity, self.max_memory, max_events=self.max_events,
        ):  # fmt: skip
            n = part.stop - part.start
            start = torch.zeros(n, dtype=torch.long, device=grads["input"].device)
            crops = {
                name: align(
                    tape.activations[name],
                    Window(grads[name], start),
                    self.widths_[name],
                    name == "input",
                    self.rules_,
                    self.gradient_rules_,
                )
                for name in self.layers_
            }
            tau_input = grads["input"].abs().sum(1).argmax(1)  # the input's rule
            labels = token_labels(
                self.groupings_, events[part], tau_input, grads["input"].shape[-1],
                speaker, alignment, transcript,
            )  # fmt: skip
            acc.update(crops, labels, utterance=self.utterances_)
        acc.flush()
        self.utterances_ += 1
        return len(events)

    def config(self) -> dict:
        """The run's settings (stored in the result as JSON)."""
        self._validate()
        return {
            "gradnap_version": __version__,
            "torch_version": torch.__version__,
            "model": {
                "name": getattr(self.model, "gradnap_name", type(self.model).__name__),
                "class": type(self.model).__name__,
            },
            "event_kind": "token",
            "backend": "tokens",
            "layers": self.layers_,
            "group_by": [g.name for g in self.groupings_],
            "groupings": {g.name: repr(g) for g in self.groupings_},
            "crop_width": self.widths_,
            "window_ms": float(self.window_ms),
            "variants": {
                v.name: {"class": type(v).__name__, **v.describe()} for v in self.variants_
            },
            "alignment": "activation_gradient: argmax sum_c |A*G|; gradient: argmax sum_c |G|"
            " (input: sum_f |G| under both), over the utterance's own frames",
            "group_time": "phoneme, word, manner: at the input layer's alignment time",
            "mask_scale": self.mask_scale,
            "navai_align": self.navai_align,
            "sensitivity_from": self.sensitivity,
            "max_memory": self.max_memory,
            "max_events": self.max_events,
            "drop_punctuation": self.drop_punctuation,
            "utterances": self.utterances_,
            "events": self.n_events_,
        }

    def _accumulator(self, state: dict | None = None) -> ProfileAccumulator:
        sums = needed_sums(self.variants_)
        if state is None:
            return ProfileAccumulator(sums, self.neurons)
        return ProfileAccumulator.from_state_dict(state, sums, self.neurons)

    def _layer_info(self) -> dict[str, dict]:
        info = {name: {"frame_ms": frame_ms(name)} for name in self.layers_}
        for name in self.layers_:
            if name in (self.neurons or {}):
                info[name]["neurons"] = list(self.neurons[name])
        from gradnap.decode.whisper import N_MELS, mel_frequencies

        if "input" in info and self.model.config.num_mel_bins == N_MELS:
            info["input"]["frequency"] = mel_frequencies()  # Hz, as the CTC front ends give
        return info
