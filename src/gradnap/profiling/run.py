"""Profiling a model one utterance at a time: :class:`Profiler` (streaming, mergeable)."""

from __future__ import annotations

from collections import defaultdict

import torch

from gradnap._version import __version__
from gradnap.profiling import sensitivity as backends
from gradnap.profiling.accumulate import ProfileAccumulator
from gradnap.profiling.align import align
from gradnap.profiling.groupings import EventContext, group_name, make_groupings
from gradnap.profiling.halves import SplitHalfSums
from gradnap.profiling.heap import bound_heap
from gradnap.profiling.method import DEFAULT_VARIANTS, make_variants, needed_sums
from gradnap.profiling.settings import (  # noqa: F401 - BACKENDS: imported from here too
    BACKENDS,
    auto_batch_events,
    check_choices,
    crop_frames,
    layer_info,
    resolve_backend,
)
from gradnap.profiling.spec import ModelSpec

# From this many input frames on (60 s at a 10 ms hop) the C heap's mmap threshold is fixed
# (heap.py). Not before: mapping every block over 1 MB made the fast path ~30 % slower on
# 10 s utterances (paper preset: 99-108 against 143-149 events/s, alternating runs), and
# utterances of ordinary length kept memory flat without it (the growth was autograd's).
LONG_INPUT_FRAMES = 6000


class Profiler(SplitHalfSums):
    """Streaming GradNAP profiles: ``update`` one utterance at a time, ``merge``, ``result``.

    Parameters (stored by the constructor, checked on the first ``update``): ``spec``
    (:class:`ModelSpec`), ``layers`` (names, default all), ``group_by`` (names from
    :data:`gradnap.profiling.groupings.GROUPINGS`: grapheme, phoneme, word, speaker, target,
    correct, manner; or :class:`~gradnap.profiling.groupings.Grouping` objects),
    ``backend`` (the gradient backend: auto, fast, generic, reference), ``crop_width``
    ("support": W_l, the default **[choice]**; "receptive_field": the network's receptive
    field in layer frames; an int; or a dict per layer), ``device``, ``batch_events``
    (events per batch, or "auto": 128 on the CPU, on a GPU as many as half its free memory
    holds), ``include_blank``, ``neurons`` (optional dict layer -> neuron indices to keep),
    ``variants`` (names or
    :class:`~gradnap.profiling.method.Variant` objects; default gradnap, navai, nap),
    ``mask_scale`` ("window" or "neuron") and ``navai_align`` ("gradient" or
    "activation_gradient"), the variants' **[choice]** items, and ``sensitivity`` ("logit":
    the gradient of the predicted class's logit, the default **[choice]**; "log_prob": of
    its log probability), ``top_events`` (k, default 5: per group, layer and neuron the k
    events of largest aligned activation ``A_l[n, tau_l]``, with their utterance and
    alignment time, for listening to what a neuron responds to
    (:mod:`gradnap.profiling.topevents`); kept for the input and the hidden layers, not
    the logits; 0 turns it off).

    Learned state (after the first ``update``) ends in ``_``: ``backend_``, ``widths_``,
    ``variants_``, ``batch_events_``, ``halves_`` (two accumulators, one per half of the
    utterances, for the split-half reliability), ``coverage_``, ``utterances_``.
    """

    def __init__(
        self,
        spec: ModelSpec,
        layers=None,
        group_by=("grapheme",),
        backend="auto",
        crop_width="support",
        device="cpu",
        batch_events=128,
        include_blank=False,
        neurons=None,
        variants=DEFAULT_VARIANTS,
        mask_scale="window",
        navai_align="gradient",
        sensitivity="logit",
        top_events=5,
        max_memory=backends.DEFAULT_MAX_MEMORY,
    ):
        self.spec = spec
        self.layers = layers
        self.group_by = group_by
        self.backend = backend
        self.max_memory = max_memory
        self.crop_width = crop_width
        self.device = device
        self.batch_events = batch_events
        self.include_blank = include_blank
        self.neurons = neurons
        self.variants = variants
        self.mask_scale = mask_scale
        self.navai_align = navai_align
        self.sensitivity = sensitivity
        self.top_events = top_events

    def _validate(self) -> None:
        """Check the parameters and set up the learned state (once, on first use)."""
        if "backend_" in self.__dict__:
            return
        spec = self.spec
        layers = spec.check_layers(self.layers)
        self.groupings_ = make_groupings(self.group_by)
        backend, self.backend_note_ = resolve_backend(spec, self.backend)
        check_choices(self.navai_align, self.sensitivity, self.mask_scale)
        self.variants_ = make_variants(
            self.variants, mask_scale=self.mask_scale, navai_align=self.navai_align
        )
        self.layers_ = layers
        self.device_ = torch.device(self.device)
        self.widths_ = {name: crop_frames(spec, name, self.crop_width) for name in layers}
        self.batch_events_ = (
            auto_batch_events(spec, self.device_)
            if self.batch_events == "auto"
            else int(self.batch_events)
        )
        sums = needed_sums(self.variants_)
        top = ("activation_gradient",) if self.top_events else ()  # the top events' tau
        self.rules_ = tuple(dict.fromkeys((*(s.align for s in sums), *top)))
        self.gradient_rules_ = tuple(
            dict.fromkeys(s.align for s in sums if s.kind in ("gradient", "saliency"))
        )
        if int(self.top_events) < 0:
            raise ValueError(f"top_events must be >= 0, not {self.top_events!r}")
        self.top_layers_ = tuple(n for n in layers if n != spec.layer_names[-1])  # no logits
        self.halves_ = tuple(self._accumulator() for _ in range(2))
        self.coverage_: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.utterances_ = 0
        spec.model.to(self.device_).eval()
        self.backend_ = backend

    def _accumulator(self, state: dict | None = None) -> ProfileAccumulator:
        args = (needed_sums(self.variants_), self.neurons, int(self.top_events), self.top_layers_)
        if state is None:
            return ProfileAccumulator(*args)
        return ProfileAccumulator.from_state_dict(state, *args)

    @property
    def front_end(self):
        """The features of an utterance's audio (what the corpus driver extracts)."""
        return self.spec.front_end

    def update(
        self,
        x: torch.Tensor,
        speaker: str | None = None,
        alignment=None,
        transcript: str | None = None,
        frames=None,
        classes=None,
        index: int | None = None,
    ) -> int:
        """Profile one utterance's features ``(F, T)``; returns its number of events.

        ``frames`` (optional) restricts the events to these output frames. ``classes``
        (optional, one class per output frame) replaces the model's own argmax for the
        events, their class c and grapheme labels (the sanity check keeps a trained
        model's events this way). ``index`` (the utterance's position in the corpus, for
        the split-half reliability: even and odd go to different halves; and recorded with
        the top events) defaults to the number of utterances seen so far.
        """
        self._validate()
        spec = self.spec
        x = x.to(self.device_, torch.float32)
        x = x[None] if x.dim() == 2 else x
        if x.shape[-1] > LONG_INPUT_FRAMES:
            bound_heap()  # per-batch blocks fragmented the C heap on long files (heap.py)
        with torch.no_grad():
            if self.backend_ == "fast":
                record = spec.stack.forward_record(x)
                full = dict(zip(spec.layer_names, record[0]))
                logits = record[0][-1]
            else:
                record = None
                logits, acts = spec.forward_with_activations(x)
                full = {"input": x[0], **{n: a[0] for n, a in acts.items()}}
                logits = logits[0]  # events always come from the model's output
        pred = logits.argmax(0)
        n_out = logits.shape[1]
        if classes is not None:
            pred = torch.as_tensor(classes, dtype=torch.long, device=pred.device)
            if pred.shape != (n_out,):
                raise ValueError(f"classes: {tuple(pred.shape)} for {n_out} output frames")
        ctx = EventContext(
            pred,
            logits,
            list(spec.labels),
            spec.blank,
            spec.output_timing.frame_seconds,
            speaker,
            alignment,
            transcript,
            frame_offset=spec.output_timing.offset_seconds,
        )
        for grouping in self.groupings_:
            grouping.check(ctx)
        keep = torch.ones_like(pred, dtype=torch.bool) if self.include_blank else pred != spec.blank
        if frames is not None:
            only = torch.zeros_like(keep)
            only[torch.as_tensor(frames, dtype=torch.long, device=keep.device)] = True
            keep &= only
        events = torch.nonzero(keep).flatten()
        if alignment is not None and any(g.coverage for g in self.groupings_):
            self._count_coverage(alignment, set(events.tolist()), n_out)
        compute = backends.backend_function(self.backend_)
        index = self.utterances_ if index is None else int(index)
        acc = self.halves_[index % 2]
        step = self.batch_events_
        if self.backend_ != "fast":  # whole-utterance gradients: bounded by max_memory
            shapes = [full[n].shape for n in self.layers_]
            step = min(step, backends.events_per_batch(shapes, self.max_memory))
        for chunk in torch.split(events, step) if len(events) else ():
            c = pred[chunk]
            kwargs = {"record": record} if self.backend_ == "fast" else {}
            if self.backend_ == "hf_ctc":
                kwargs["max_memory"] = self.max_memory
            if self.sensitivity != "logit":  # backends of the plain signature need not know
                kwargs["sensitivity"] = self.sensitivity
            windows = compute(spec, x, chunk, c, self.layers_, **kwargs)
            crops = {
                name: align(
                    full[name],
                    windows[name],
                    self.widths_[name],
                    name == "input",
                    self.rules_,
                    self.gradient_rules_,
                )
                for name in self.layers_
            }
            labels = self._labels(ctx, chunk, crops)
            acc.update(crops, labels, utterance=self.utterances_, index=index)
        acc.flush()  # this utterance's activation-window sums
        self.utterances_ += 1
        return len(events)

    def _labels(self, ctx: EventContext, frames: torch.Tensor, crops) -> list[list[str]]:
        """Each event's group names, one per grouping that labels it."""
        if any("alignment_point" in g.needs for g in self.groupings_):
            ctx.points = {
                name: self.spec.timing[name].time(c.tau().to(torch.float64))
                for name, c in crops.items()
            }
        frames = frames.tolist()
        columns = [(g.name, g.labels(ctx, frames)) for g in self.groupings_]
        return [
            [group_name(name, col[e]) for name, col in columns if col[e] is not None]
            for e in range(len(frames))
        ]

    def _count_coverage(self, alignment, event_frames: set[int], n_out: int) -> None:
        from gradnap.profiling.events import span_frames

        timing = self.spec.output_timing
        for label, start, end in alignment.phones:
            frames = span_frames(start, end, timing.frame_seconds, n_out, timing.offset_seconds)
            hit = any(t in event_frames for t in frames)
            self.coverage_[label][0 if hit else 1] += 1

    def config(self) -> dict:
        """The run's settings (stored in the result as JSON)."""
        self._validate()
        return {
            "gradnap_version": __version__,
            "torch_version": torch.__version__,
            "model": self.spec.description,
            "layers": self.layers_,
            "group_by": [g.name for g in self.groupings_],
            "groupings": {g.name: repr(g) for g in self.groupings_},
            "backend": self.backend_,
            "backend_note": self.backend_note_,
            "crop_width": self.widths_,
            "include_blank": self.include_blank,
            "variants": {
                v.name: {"class": type(v).__name__, **v.describe()} for v in self.variants_
            },
            "alignment": "activation_gradient: argmax sum_c |A*G|; gradient: argmax sum_c |G|"
            " (input: sum_f |G| under both)",
            "mask_scale": self.mask_scale,
            "navai_align": self.navai_align,
            "sensitivity_from": self.sensitivity,
            "top_events": int(self.top_events),
            "logits": self.spec.description.get("sensitivity_from", "logit"),
            "model_spec": self.spec.config(),
            "max_memory": self.max_memory,
            "blank_events": self.include_blank,
            "utterances": self.utterances_,
            "events": self.n_events_,
            "features": self.spec.feature_config.to_dict() if self.spec.feature_config else None,
        }

    def _layer_info(self) -> dict[str, dict]:
        return layer_info(self.spec, self.layers_, self.neurons)


def as_spec(model) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if hasattr(model, "geometry") and hasattr(model, "layers"):
        return ModelSpec.from_wav2letter(model)
    if type(model).__name__.endswith("ForCTC"):  # transformers
        return ModelSpec.from_huggingface(model)
    raise TypeError("pass a Wav2Letter model or a gradnap.ModelSpec describing your model")
