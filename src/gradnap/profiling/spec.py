"""What gradnap needs to know about a model to profile it: :class:`ModelSpec`.

One description for any model: its layers by dotted module path, how each output becomes
``(batch, channels, time)`` (:mod:`gradnap.profiling.layout`), where the logits are, its front
end (:mod:`gradnap.audio.frontends`) and each layer's time (:mod:`gradnap.profiling.timing`).
Everything that can be wrong is checked when the spec is built, on two probe inputs of
different lengths made by the front end, with one error per problem naming the layer
(:mod:`gradnap.profiling.probe`).
"""

from __future__ import annotations

import torch
from torch import nn

from gradnap.audio.features import FeatureConfig
from gradnap.audio.frontends import FrontEnd, front_end
from gradnap.models.geometry import StackGeometry
from gradnap.profiling import probe
from gradnap.profiling.layout import Layer, Layout, LayoutError, capture, resolve
from gradnap.profiling.stack import ConvStack
from gradnap.profiling.timing import LayerTiming, from_convs

PROBE_SECONDS = probe.PROBE_SECONDS


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
        return probe.probe_inputs(self.front_end)

    def validate(self, inputs=None) -> None:
        """Find every layer's layout and the logits on two probe inputs (default
        :meth:`probe_inputs`); raise a :class:`LayoutError` naming the layer and the
        problem (:func:`gradnap.profiling.probe.validate`)."""
        probe.validate(self, inputs if inputs is not None else self.probe_inputs())

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
            hooks[probe.LOGITS] = (self._logits_module, self.output_layout)
        with capture(hooks, acts):
            ret = self.model(self.model_input(x))
        if self._logits_module is not None:
            logits = acts.pop(probe.LOGITS)
        elif self.stack is not None and self.output is None:
            logits = ret
        else:
            logits = self.output_layout.to_bct(probe.pick_output(self, {}, ret))
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
