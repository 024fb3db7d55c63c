"""Profiling a model one utterance at a time: :class:`Profiler` (streaming, mergeable)."""

from __future__ import annotations

from collections import defaultdict

import torch
import xarray as xr

from gradnap._version import __version__
from gradnap.profiling import sensitivity
from gradnap.profiling.accumulate import ProfileAccumulator
from gradnap.profiling.align import align
from gradnap.profiling.events import ctc_forced_alignment, frame_labels
from gradnap.profiling.result import build_tree
from gradnap.profiling.spec import ModelSpec

GROUPINGS = ("grapheme", "phoneme", "word", "speaker", "target", "correct")
NEEDS_ALIGNMENT = ("phoneme", "word")
METHODS = ("auto", "fast", "generic", "reference")


def _label(symbol: str) -> str:
    return {" ": "<space>"}.get(symbol, symbol)


def auto_batch_events(spec: ModelSpec, device: torch.device) -> int:
    """Events per batch that fill the device: 128 on the CPU (cache-sized); on a GPU, half
    its free memory over an estimate of one event's working set (its gradient windows,
    masks and crops in every layer, float32), between 128 and 8192."""
    if device.type != "cuda" or spec.geometry is None:
        return 128
    per_event = 0
    for layer in spec.stack.layers if spec.stack else []:
        width = spec.geometry.support_width(layer.name) + layer.spec.kernel
        per_event += 4 * 4 * (layer.conv.in_channels + layer.conv.out_channels) * width
    free, _ = torch.cuda.mem_get_info(device)
    return int(min(8192, max(128, free // 2 // max(per_event, 1))))


class Profiler:
    """Streaming GradNAP profiles: ``update`` one utterance at a time, ``merge``, ``result``.

    Parameters (stored only): ``spec`` (:class:`ModelSpec`), ``layers`` (names, default all),
    ``group_by`` (any of grapheme, phoneme, word, speaker, target, correct), ``method``
    (auto, fast, generic, reference), ``crop_width`` ("support": W_l, the default
    **[choice]**; "receptive_field": the network's receptive field in layer frames; an int;
    or a dict per layer), ``device``, ``batch_events`` (events per batch, or "auto": 128
    on the CPU, on a GPU as many as half its free memory holds), ``include_blank``, ``neurons``
    (optional dict layer -> neuron indices to keep).
    """

    def __init__(
        self,
        spec: ModelSpec,
        layers=None,
        group_by=("grapheme",),
        method="auto",
        crop_width="support",
        device="cpu",
        batch_events=128,
        include_blank=False,
        neurons=None,
        max_memory=sensitivity.DEFAULT_MAX_MEMORY,
    ):
        self.spec = spec
        self.max_memory = max_memory
        self.layers = spec.check_layers(layers)
        unknown = [g for g in group_by if g not in GROUPINGS]
        if unknown:
            raise ValueError(f"unknown grouping(s) {unknown}; groupings are {GROUPINGS}")
        self.group_by = tuple(group_by)
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; methods are {METHODS}")
        self.method = method
        self.crop_width = crop_width
        self.device = torch.device(device)
        self.batch_events = (
            auto_batch_events(spec, self.device) if batch_events == "auto" else int(batch_events)
        )
        self.include_blank = include_blank
        self.neurons = neurons or {}
        self.path_ = (
            ("fast" if spec.stack is not None else "generic") if method == "auto" else method
        )
        if self.path_ == "fast" and spec.stack is None:
            raise ValueError("method 'fast' needs a stack of Conv1d layers (ModelSpec.stack)")
        self.widths_ = {name: self._width(name) for name in self.layers}
        # two accumulators, one per half of the utterances (split-half reliability);
        # the profiles are their sum
        self.halves_ = (ProfileAccumulator(self.neurons), ProfileAccumulator(self.neurons))
        self.coverage_: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.utterances_ = 0
        self.spec.model.to(self.device).eval()

    def _width(self, layer: str) -> int:
        w = (
            self.crop_width.get(layer, "support")
            if isinstance(self.crop_width, dict)
            else self.crop_width
        )
        if isinstance(w, int):
            return w
        g = self.spec.geometry
        if w == "support":
            return self.spec.crop_frames(layer)
        if g is None:
            raise ValueError("crop_width='receptive_field' needs a conv geometry")
        if w == "receptive_field":
            top = len(g.layer_names) - 1
            return -(-g.receptive_field(top) // g.stride(layer))
        raise ValueError(f"crop_width must be 'support', 'receptive_field' or an int, not {w!r}")

    @property
    def n_events_(self) -> int:
        """Events profiled so far (both halves)."""
        return sum(h.n_events_ for h in self.halves_)

    @property
    def acc_(self) -> ProfileAccumulator:
        """Both halves' sums together (a new accumulator)."""
        return ProfileAccumulator(self.neurons).merge(self.halves_[0]).merge(self.halves_[1])

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
        the split-half reliability: even and odd go to different halves) defaults to the
        number of utterances seen so far.
        """
        spec = self.spec
        x = x.to(self.device, torch.float32)
        x = x[None] if x.dim() == 2 else x
        with torch.no_grad():
            if self.path_ == "fast":
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
        per_frame = self._frame_groups(pred, logits, n_out, speaker, alignment, transcript)
        keep = torch.ones_like(pred, dtype=torch.bool) if self.include_blank else pred != spec.blank
        if frames is not None:
            only = torch.zeros_like(keep)
            only[torch.as_tensor(frames, dtype=torch.long, device=keep.device)] = True
            keep &= only
        events = torch.nonzero(keep).flatten()
        if alignment is not None and "phoneme" in self.group_by:
            self._count_coverage(alignment, set(events.tolist()), n_out)
        compute = {
            "fast": sensitivity.fast,
            "generic": sensitivity.generic,
            "reference": sensitivity.reference,
        }[self.path_]
        acc = self.halves_[(self.utterances_ if index is None else index) % 2]
        step = self.batch_events
        if self.path_ != "fast":  # whole-utterance gradients: bounded by max_memory
            shapes = [full[n].shape for n in self.layers]
            step = min(step, sensitivity.events_per_batch(shapes, self.max_memory))
        for chunk in torch.split(events, step) if len(events) else ():
            c = pred[chunk]
            kwargs = {"record": record} if self.path_ == "fast" else {}
            windows = compute(spec, x, chunk, c, self.layers, **kwargs)
            crops = {
                name: align(full[name], windows[name], self.widths_[name], name == "input")
                for name in self.layers
            }
            acc.update(crops, [per_frame[t] for t in chunk.tolist()])
        acc.flush()  # this utterance's activation-window sums
        self.utterances_ += 1
        return len(events)

    def _frame_groups(self, pred, logits, n_out, speaker, alignment, transcript):
        spec = self.spec
        timing = spec.output_timing
        columns = []
        if "grapheme" in self.group_by:
            columns.append([f"grapheme:{_label(spec.labels[k])}" for k in pred.tolist()])
        for grouping, tier in (("phoneme", "phones"), ("word", "words")):
            if grouping in self.group_by:
                if alignment is None:
                    raise ValueError(f"grouping {grouping!r} needs an alignment (TextGrid)")
                labels = frame_labels(
                    getattr(alignment, tier), timing.frame_seconds, n_out, timing.offset_seconds
                )
                columns.append([f"{grouping}:{lab}" if lab else None for lab in labels])
        if "speaker" in self.group_by:
            if speaker is None:
                raise ValueError("grouping 'speaker' needs the utterance's speaker")
            columns.append([f"speaker:{speaker}"] * n_out)
        if "target" in self.group_by or "correct" in self.group_by:
            if transcript is None:
                raise ValueError("groupings 'target' and 'correct' need the transcript")
            index = {s: i for i, s in enumerate(spec.labels)}
            ids = [index[ch] for ch in transcript]
            path = ctc_forced_alignment(
                torch.log_softmax(logits.T.float(), dim=-1), ids, spec.blank
            )
            if "target" in self.group_by:
                columns.append([f"target:{_label(spec.labels[k])}" for k in path])
            if "correct" in self.group_by:
                columns.append(
                    [f"correct:{'yes' if p == k else 'no'}" for p, k in zip(pred.tolist(), path)]
                )
        return [[col[t] for col in columns if col[t] is not None] for t in range(n_out)]

    def _count_coverage(self, alignment, event_frames: set[int], n_out: int) -> None:
        from gradnap.profiling.events import span_frames

        timing = self.spec.output_timing
        for label, start, end in alignment.phones:
            frames = span_frames(start, end, timing.frame_seconds, n_out, timing.offset_seconds)
            hit = any(t in event_frames for t in frames)
            self.coverage_[label][0 if hit else 1] += 1

    def merge(self, other: Profiler) -> Profiler:
        for mine, theirs in zip(self.halves_, other.halves_):
            mine.merge(theirs)
        for k, (a, b) in other.coverage_.items():
            self.coverage_[k][0] += a
            self.coverage_[k][1] += b
        self.utterances_ += other.utterances_
        return self

    def state_dict(self) -> dict:
        """The sums so far (both halves), coverage and utterance count (for checkpoints)."""
        return {
            "halves": [h.state_dict() for h in self.halves_],
            "coverage": dict(self.coverage_),
            "utterances": self.utterances_,
        }

    def load_state_dict(self, state: dict) -> Profiler:
        self.halves_ = tuple(
            ProfileAccumulator.from_state_dict(h, self.neurons) for h in state["halves"]
        )
        self.coverage_.clear()
        for k, v in state["coverage"].items():
            self.coverage_[k] = list(v)
        self.utterances_ = int(state["utterances"])
        return self

    def config(self) -> dict:
        return {
            "gradnap_version": __version__,
            "torch_version": torch.__version__,
            "model": self.spec.description,
            "layers": self.layers,
            "group_by": self.group_by,
            "method": self.path_,
            "crop_width": self.widths_,
            "include_blank": self.include_blank,
            "alignment": "GradNAP: argmax sum_c |A*G| (input: sum_f |G|);"
            " NAvAI: argmax sum_c |G|; NAP: GradNAP crop sorted descending",
            "mask": "|mean_G| / max over the whole window",
            "sensitivity_from": self.spec.description.get("sensitivity_from", "logit"),
            "model_spec": self.spec.config(),
            "max_memory": self.max_memory,
            "blank_events": self.include_blank,
            "utterances": self.utterances_,
            "events": self.n_events_,
            "features": self.spec.feature_config.to_dict() if self.spec.feature_config else None,
        }

    def result(self, extra_config: dict | None = None) -> xr.DataTree:
        """The profiles so far, as a DataTree (see :mod:`gradnap.profiling.result`)."""
        spec = self.spec
        info = {}
        for name in self.layers:
            info[name] = {"frame_ms": 1000 * spec.frame_seconds(name)}
            if name in self.neurons:
                info[name]["neurons"] = list(self.neurons[name])
            if name in spec.neuron_coords:
                info[name]["neuron_coords"] = spec.neuron_coords[name]
            if name == "input":  # mel Hz, MFCC index: what the front end says
                coords = dict(spec.front_end.coords())
                if "frequency" in coords:
                    info[name]["frequency"] = coords.pop("frequency")[0]
                if coords:
                    info[name]["neuron_coords"] = coords
        return build_tree(
            self.acc_,
            info,
            {**self.config(), **(extra_config or {})},
            dict(self.coverage_),
            halves=self.halves_,
        )


def as_spec(model) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if hasattr(model, "geometry") and hasattr(model, "layers"):
        return ModelSpec.from_wav2letter(model)
    if type(model).__name__.endswith("ForCTC"):  # transformers
        return ModelSpec.from_huggingface(model)
    raise TypeError("pass a Wav2Letter model or a gradnap.ModelSpec describing your model")
