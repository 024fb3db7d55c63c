"""What gradnap needs to know about a model to profile it: :class:`ModelSpec`.

One description for any model: its layers by dotted module path, how each output becomes
``(batch, channels, time)`` (:mod:`gradnap.profiling.layout`), where the logits are, its front
end (:mod:`gradnap.audio.frontends`) and each layer's time (:mod:`gradnap.profiling.timing`).
Everything that can be wrong is checked when the spec is built, on two probe inputs of
different lengths made by the front end, with one error per problem naming the layer.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gradnap.audio.features import FeatureConfig
from gradnap.audio.frontends import FrontEnd, front_end
from gradnap.models.geometry import StackGeometry
from gradnap.profiling.layout import (
    Layer,
    Layout,
    LayoutError,
    capture,
    find_time_axis,
    resolve,
    select,
)
from gradnap.profiling.logits import find_logits_before_softmax, is_log_normalized
from gradnap.profiling.stack import ConvStack
from gradnap.profiling.timing import LayerTiming, from_convs, from_probe

_LOGITS = "\0logits"  # the hook name of a logits module (never a user layer name)
PROBE_SECONDS = (1.0, 1.5)


class ModelSpec:
    """A model and its description.

    Parameters
    ----------
    model:
        Any ``nn.Module`` taking the front end's ``(batch, C, T)`` (or, through
        ``model_input``, e.g. ``(batch, samples)``).
    layers:
        Bottom to top: a list of dotted module paths (``"encoder.layers.3"``), or a dict
        ``name -> path | module | gradnap.Layer``. Each output (a tensor in any layout, a
        tuple, a ``ModelOutput``) is brought to ``(batch, channels, time)``; 4-D outputs are
        flattened to ``(channel x bin, time)``.
    labels:
        The output classes (``labels[blank]`` is the CTC blank).
    output:
        Where the logits are: ``None`` (``.logits`` of a ``ModelOutput``, else the tensor or
        first element returned), a key or attribute name, a tuple index, a module path, or a
        callable of the model's return value. When the model returns log-probabilities,
        the logits before the log-softmax are used where a module returns them (the config
        says which: ``description["sensitivity_from"]``).
    features:
        The front end: a name (``"log-mel-80"``, ``"mfcc"``, ``"waveform"``), a
        :class:`FeatureConfig`, a :class:`FrontEnd` or a callable ``(wav, sr) -> (C, T)``.
    timing:
        ``name -> (frame_ms, offset_ms)`` or :class:`LayerTiming` for layers whose time
        cannot be derived (else: the conv geometry, or the probe's frame rate with offset 0).
    crop_ms:
        Crop window for layers of unbounded support (500 ms **[choice]**).

    >>> spec = gradnap.ModelSpec(model, layers=["encoder.0", "encoder.2"], labels=labels,
    ...                          features="log-mel-80")  # doctest: +SKIP
    """

    def __init__(
        self,
        model: nn.Module,
        layers,
        labels,
        blank: int = 0,
        hop_seconds: float | None = None,
        geometry: StackGeometry | None = None,
        stack: ConvStack | None = None,
        feature_config: FeatureConfig | None = None,
        description: dict | None = None,
        *,
        output=None,
        features=None,
        timing: dict | None = None,
        crop_ms: float = 500.0,
        model_input=None,
        validate: bool = True,
    ):
        self.model = model
        self.labels = list(labels)
        self.blank = int(blank)
        if not 0 <= self.blank < len(self.labels):
            raise ValueError(f"blank {blank} is not a class index of {len(self.labels)} labels")
        self.front_end: FrontEnd = front_end(features if features is not None else feature_config)
        self.feature_config = self.front_end.feature_config
        self.geometry, self.stack = geometry, stack
        self._hop = hop_seconds if hop_seconds is not None else self.front_end.hop_seconds
        self.description = dict(description or {})
        self.crop_ms = float(crop_ms)
        self.model_input = model_input or (lambda x: x)
        if isinstance(layers, (list, tuple)):
            layers = {(ref if isinstance(ref, str) else ref.path): ref for ref in layers}
        self.taps: dict[str, Layer] = {}
        self.layers: dict[str, nn.Module] = {}
        for name, ref in layers.items():
            if name == "input":
                raise LayoutError("'input' is the input layer's name; name your layers otherwise")
            tap = ref if isinstance(ref, Layer) else Layer(ref if isinstance(ref, str) else name)
            self.taps[name] = tap
            self.layers[name] = resolve(
                model, ref if isinstance(ref, nn.Module) else tap.path, name
            )
        self.output = output
        self._logits_module = None
        self.layouts: dict[str, Layout] = {}
        self.neuron_coords: dict[str, dict] = {}
        self.output_layout: Layout | None = None
        self.timing: dict[str, LayerTiming] = {}
        for name, value in (timing or {}).items():
            self.timing[name] = (
                value
                if isinstance(value, LayerTiming)
                else LayerTiming(value[0] / 1000, value[1] / 1000, False, "declared")
            )
        for name, tap in self.taps.items():
            if tap.timing is not None and name not in self.timing:
                self.timing[name] = LayerTiming(tap.timing[0] / 1000, tap.timing[1] / 1000)
        if stack is not None:
            self._stack_layouts()
        elif validate:
            self.validate()

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_wav2letter(cls, model) -> ModelSpec:
        stack = ConvStack.from_wav2letter(model)
        labels = (
            list(model.alphabet.symbols)
            if hasattr(model, "alphabet")
            else ["<blank>", " ", "'"] + [chr(ord("a") + i) for i in range(26)]
        )
        fcfg = getattr(model, "feature_config", None) or FeatureConfig()
        return cls(
            model,
            dict(model.layers()),
            labels,
            0,
            fcfg.hop_seconds,
            model.geometry,
            stack,
            fcfg,
            {"arch": "wav2letter", **model.config.to_dict()},
        )

    @classmethod
    def from_sequential(
        cls,
        model: nn.Module,
        labels: list[str],
        blank: int = 0,
        hop_seconds: float | None = None,
        names: list[str] | None = None,
        features=None,
    ) -> ModelSpec:
        """A stack of ``Conv1d`` (grouped too), eval-mode ``BatchNorm1d`` and element-wise
        activations: an ``nn.Sequential`` (nested ones are flattened) or a model holding one
        as ``acoustic_model`` (torchaudio's ``Wav2Letter``, whose ``forward`` adds a
        ``log_softmax``: the logits are the class convolution's output, before the final
        ReLU). Gets the fast exact path."""
        stack = ConvStack.from_sequential(model, names)
        layers = {layer.name: layer.module for layer in stack.layers}
        if features is None:  # 1 channel: a waveform (torchaudio's waveform Wav2Letter)
            n_in = stack.layers[0].conv.in_channels
            features = "waveform" if n_in == 1 else f"log-mel-{n_in}"
        spec = cls(
            model,
            layers,
            list(labels),
            blank,
            hop_seconds,
            stack.geometry,
            stack,
            None,
            {"arch": "sequential", **stack.notes},
            features=features,
        )
        return spec

    @classmethod
    def from_huggingface(cls, model, labels=None, **kwargs) -> ModelSpec:
        """A transformers ``*ForCTC`` audio model (or a saved model directory); see
        :func:`gradnap.models.huggingface.spec_from_huggingface`."""
        from gradnap.models.huggingface import spec_from_huggingface

        return spec_from_huggingface(model, labels, **kwargs)

    # ------------------------------------------------------------------ validation
    def _stack_layouts(self) -> None:
        """Conv stacks: every layer is (B, C, T); time from the geometry."""
        for name in self.layers:
            self.layouts[name] = Layout(None, 3, 2)
        self.output_layout = Layout(None, 3, 2)
        top = self.stack.layers[-1]
        if self.stack.layers[-1].module is not self.model:
            self._logits_module = top.module
        names = ["input"] + list(self.layers)
        for name, t in zip(names, from_convs(list(self.geometry.specs), self.hop_seconds)):
            self.timing.setdefault(name, t)
        self.description.setdefault("sensitivity_from", "logit")

    def probe_inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Two inputs ``(1, C, T)`` of different lengths from the front end (noise)."""
        g = torch.Generator().manual_seed(0)
        sr = self.front_end.sample_rate
        out = []
        for seconds in PROBE_SECONDS:
            wav = 0.1 * torch.randn(int(seconds * sr), generator=g)
            out.append(self.front_end(wav.numpy(), sr)[None])
        return out[0], out[1]

    def validate(self, inputs=None) -> None:
        """Find every layer's layout and the logits on two probe inputs; raise a
        :class:`LayoutError` naming the layer and the problem."""
        short, long = inputs if inputs is not None else self.probe_inputs()
        hooks = {name: (module, None) for name, module in self.layers.items()}
        out_module = self._output_module()
        if out_module is not None:
            hooks[_LOGITS] = (out_module, None)
        raw = []
        self.model.eval()
        with torch.no_grad():
            for x in (short, long):
                store: dict = {}
                with capture(hooks, store, raw=True):
                    ret = self.model(self.model_input(x))
                raw.append((store, ret))
        t_in = (short.shape[-1], long.shape[-1])
        for name, tap in self.taps.items():
            if name not in raw[0][0]:
                raise LayoutError(f"layer {name!r} ({tap.path}): the module is never called")
            a, b = (select(r[0][name], tap.item, f"layer {name!r}") for r in raw)
            axis = find_time_axis(a, b, f"layer {name!r} ({tap.path})", tap.time_axis)
            self.layouts[name] = Layout(tap.item, a.dim(), axis)
            if a.dim() == 4:  # (B, C, F, T) -> neuron c * F + f
                sizes = [a.shape[d] for d in range(1, 4) if d != axis]
                idx = np.arange(sizes[0] * sizes[1])
                self.neuron_coords[name] = {
                    "channel": (idx // sizes[1], {"long_name": "channel of the 2-D map"}),
                    "bin": (idx % sizes[1], {"long_name": "frequency bin of the 2-D map"}),
                }
            if name not in self.timing:
                self.timing[name] = from_probe(
                    self.hop_seconds, t_in, (a.shape[axis], b.shape[axis])
                )
        self.timing.setdefault("input", LayerTiming(self.hop_seconds, 0.0, False, "front end"))
        logits = [self._pick_output(store, ret) for store, ret in raw]
        axis = find_time_axis(*logits, "output (logits)")
        others = [d for d in range(1, logits[0].dim()) if d != axis]
        if len(others) != 1:
            raise LayoutError(
                f"output (logits): expected (batch, classes, time) in some order, got "
                f"{tuple(logits[0].shape)}; select the logits with output=..."
            )
        if logits[0].shape[others[0]] != len(self.labels):
            raise LayoutError(
                f"output (logits): the class axis has {logits[0].shape[others[0]]} classes "
                f"(shape {tuple(logits[0].shape)}) but labels has {len(self.labels)}"
            )
        self.output_layout = Layout(None, logits[0].dim(), axis)
        if self._logits_module is None:
            self.description.setdefault("sensitivity_from", "logit")
            bct = self.output_layout.to_bct(logits[0])
            if is_log_normalized(bct):
                found = find_logits_before_softmax(
                    self.model, self.model_input(short), self.output_layout, bct
                )
                if found is None:
                    self.description["sensitivity_from"] = (
                        "log-probability (the model's output; the logits before its "
                        "log-softmax could not be reached)"
                    )
                else:
                    path, self._logits_module, note = found
                    self.description["sensitivity_from"] = (
                        f"logit: the output of {path}, before the model's log-softmax"
                    )
                    if note:
                        self.description["final_activation"] = note

    def _output_module(self):
        if isinstance(self.output, str):
            try:
                self._logits_module = self.model.get_submodule(self.output)
                self.description["sensitivity_from"] = f"logit: the output of {self.output}"
            except AttributeError:
                pass
        elif isinstance(self.output, nn.Module):
            self._logits_module = self.output
        return self._logits_module

    def _pick_output(self, store, ret) -> torch.Tensor:
        if self._logits_module is not None:
            return select(store[_LOGITS], None, "output (logits module)")
        out = self.output
        if callable(out) and not isinstance(out, nn.Module):
            value = out(ret)
        elif isinstance(out, str):
            if isinstance(ret, dict) and out in ret:
                value = ret[out]
            elif hasattr(ret, out):
                value = getattr(ret, out)
            else:
                raise LayoutError(f"output={out!r}: neither a key of the output nor a module")
        elif out is None and isinstance(ret, dict) and "logits" in ret:
            value = ret["logits"]
        else:
            value = select(ret, out, "output (logits)")
        if not torch.is_tensor(value):
            raise LayoutError(f"output (logits): a {type(value).__name__}, not a tensor")
        return value

    # ------------------------------------------------------------------ use
    @property
    def hop_seconds(self) -> float:
        """The input frame hop (s)."""
        return self._hop

    @hop_seconds.setter
    def hop_seconds(self, value: float) -> None:
        """Setting the hop of a conv stack re-derives every layer's time from it."""
        self._hop = float(value)
        if self.stack is not None:
            names = ["input"] + list(self.layers)
            for name, t in zip(names, from_convs(list(self.geometry.specs), self._hop)):
                self.timing[name] = t

    @property
    def layer_names(self) -> list[str]:
        return ["input"] + list(self.layers)

    @property
    def output_stride(self) -> int:
        if self.geometry is None:
            raise ValueError("the model's output stride is unknown: give a geometry")
        return self.geometry.output_stride

    @property
    def output_timing(self) -> LayerTiming:
        """Timing of the output (logits) frames: the last layer's, or the top conv's."""
        if self.stack is not None:
            return self.timing[self.stack.layers[-1].name]
        last = list(self.layers)[-1]
        return self.timing.get("output", self.timing[last])

    def frame_seconds(self, layer: str) -> float:
        return self.timing[layer].frame_seconds

    def crop_frames(self, layer: str) -> int:
        """Default crop width: the gradient-support width where the geometry bounds it,
        else ``crop_ms`` in the layer's frames."""
        t = self.timing[layer]
        if self.geometry is not None and t.bounded and layer in self.geometry.layer_names:
            return self.geometry.support_width(layer)
        return t.crop_frames(self.crop_ms)

    def check_layers(self, names) -> list[str]:
        """Validate requested layer names (``None`` means all); clear error otherwise."""
        if names is None:
            return self.layer_names
        unknown = [n for n in names if n not in self.layer_names]
        if unknown:
            raise KeyError(
                f"unknown layer(s) {', '.join(map(repr, unknown))}; layers are "
                f"{', '.join(self.layer_names)}"
            )
        return [n for n in self.layer_names if n in names]

    def forward_with_activations(self, x: torch.Tensor):
        """The model's own forward on ``(1, C, T)`` with hooks that keep every ``A_l``.

        Hooks are removed on exit, also on an exception. Returns ``(logits, {name: A_l})``:
        the logits ``(1, classes, T_out)`` and each ``A_l`` ``(1, C_l, T_l)``.
        """
        acts: dict[str, torch.Tensor] = {}
        hooks = {name: (m, self.layouts.get(name)) for name, m in self.layers.items()}
        if self._logits_module is not None:
            hooks[_LOGITS] = (self._logits_module, self.output_layout)
        with capture(hooks, acts):
            ret = self.model(self.model_input(x))
        if self._logits_module is not None:
            logits = acts.pop(_LOGITS)
        elif self.stack is not None and self.output is None:
            logits = ret
        else:
            logits = self.output_layout.to_bct(self._pick_output({}, ret))
        return logits, acts

    def config(self) -> dict:
        """What the spec says about the model, JSON-serializable."""
        return {
            **self.description,
            "layers": {n: t.path for n, t in self.taps.items()},
            "features": self.front_end.to_dict(),
            "timing": {n: t.to_dict() for n, t in self.timing.items()},
            "crop_ms": self.crop_ms,
        }


__all__ = ["Layer", "LayoutError", "ModelSpec", "capture"]
