"""Hugging Face ``*ForCTC`` audio models (wav2vec2, HuBERT, WavLM, Data2VecAudio) as a
:class:`gradnap.ModelSpec`.

Default layers, bottom to top: each convolution of the feature encoder (``conv0`` ..),
the feature projection (``projection``), every transformer layer (``layer0`` ..) and the
CTC head (``logits``). The input is the (normalized) waveform, one channel. Time comes from
the architecture: the feature encoder's convolutions are unpadded, so frame ``t`` of conv
``i`` covers samples ``[t s_i, t s_i + RF_i)`` (wav2vec2's output frame ``t``: ``[320 t,
320 t + 400)``) and is placed at their centre; every layer's gradient support is unbounded
(GroupNorm over time in the first convolution, attention above), so each is cropped to
``crop_ms`` around its alignment point.

transformers is an optional dependency (``pip install gradnap[hf]``).

>>> spec = gradnap.ModelSpec.from_huggingface(model, labels=processor)  # doctest: +SKIP
>>> spec = gradnap.ModelSpec.from_huggingface("saved-model-dir/")      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from gradnap.audio.frontends import Waveform
from gradnap.models.geometry import ConvSpec
from gradnap.profiling.spec import ModelSpec
from gradnap.profiling.timing import from_convs

WORD_SEPARATOR = "|"


def load_pretrained(path: str | Path):
    """A saved model directory: the model (safetensors weights only, never remote code), its
    vocabulary (``vocab.json``, or None) and feature extractor settings (or {})."""
    from transformers import AutoConfig, AutoModelForCTC

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ValueError(f"{path}: not a saved Hugging Face model (no config.json)")
    if not any(path.glob("*.safetensors")):
        raise ValueError(
            f"{path}: no .safetensors weights; gradnap loads only safetensors (pickled "
            "pytorch_model.bin files can run code): save the model with safe_serialization"
        )
    config = AutoConfig.from_pretrained(path, trust_remote_code=False, local_files_only=True)
    if getattr(config, "auto_map", None):
        raise ValueError(f"{path}: the model needs remote code (auto_map); gradnap never runs it")
    model = AutoModelForCTC.from_pretrained(
        path, use_safetensors=True, trust_remote_code=False, local_files_only=True
    )
    vocab = None
    if (path / "vocab.json").is_file():
        vocab = json.loads((path / "vocab.json").read_text())
        if vocab and all(isinstance(v, dict) for v in vocab.values()):  # per-language vocab
            vocab = next(iter(vocab.values()))
    extractor = {}
    if (path / "preprocessor_config.json").is_file():
        extractor = json.loads((path / "preprocessor_config.json").read_text())
    return model.eval(), vocab, extractor


def labels_from_vocab(vocab, n_classes: int) -> list[str]:
    """Class labels from a vocabulary (``token -> id``, a tokenizer or processor, or a
    list); the word separator ``|`` becomes ``" "`` (shown as ``<space>``)."""
    if hasattr(vocab, "tokenizer"):
        vocab = vocab.tokenizer
    if hasattr(vocab, "get_vocab"):
        vocab = vocab.get_vocab()
    if isinstance(vocab, dict):
        ids = {int(i) for i in vocab.values()}
        if ids != set(range(len(ids))):
            raise ValueError("the vocabulary's ids are not 0..N-1")
        labels = [""] * len(ids)
        for token, i in vocab.items():
            labels[int(i)] = token
    else:
        labels = list(vocab)
    if len(labels) != n_classes:
        raise ValueError(f"{len(labels)} labels for a model with {n_classes} classes")
    return [" " if s == WORD_SEPARATOR else s for s in labels]


def default_layers(model) -> dict[str, str]:
    prefix = model.base_model_prefix
    base = getattr(model, prefix)
    layers = {
        f"conv{i}": f"{prefix}.feature_extractor.conv_layers.{i}"
        for i in range(len(base.feature_extractor.conv_layers))
    }
    layers["projection"] = f"{prefix}.feature_projection"
    layers.update(
        {f"layer{i}": f"{prefix}.encoder.layers.{i}" for i in range(len(base.encoder.layers))}
    )
    layers["logits"] = "lm_head"
    return layers


def spec_from_huggingface(
    model, labels=None, *, layers=None, features=None, crop_ms: float = 500.0
) -> ModelSpec:
    """A :class:`ModelSpec` of a transformers ``*ForCTC`` audio model or saved directory.

    ``labels``: a list, a ``token -> id`` vocabulary or a tokenizer/processor; by default the
    directory's ``vocab.json`` (a model object carries none: then ``labels=`` is required).
    The blank is ``config.pad_token_id``. ``layers``: names -> module paths (default: see
    the module docstring). ``features``: the front end (default: the waveform, normalized
    as the directory's feature extractor says, else normalized).
    """
    vocab, extractor, source = None, {}, None
    if isinstance(model, (str, Path)):
        source = str(model)
        model, vocab, extractor = load_pretrained(model)
    model.eval()
    config = model.config
    if not hasattr(model, "lm_head") or not hasattr(model, model.base_model_prefix):
        raise ValueError(f"{type(model).__name__}: not a Hugging Face *ForCTC audio model")
    n_classes = model.lm_head.out_features
    if labels is None and vocab is None:
        raise ValueError(
            f"{type(model).__name__} has no vocabulary: pass labels= (a list of {n_classes} "
            "symbols, the vocab dict or the processor)"
        )
    labels = labels_from_vocab(labels if labels is not None else vocab, n_classes)
    blank = config.pad_token_id
    if blank is None:
        raise ValueError("config.pad_token_id (the CTC blank) is not set")
    if features is None:
        features = Waveform(
            int(extractor.get("sampling_rate", 16000)), bool(extractor.get("do_normalize", True))
        )
    convs = [
        ConvSpec(f"conv{i}", int(k), int(s), 1, 0)
        for i, (k, s) in enumerate(zip(config.conv_kernel, config.conv_stride))
    ]
    front = features
    hop = 1.0 / getattr(front, "sample_rate", 16000)
    conv_timing = [
        dataclasses.replace(t, source="architecture") for t in from_convs(convs, hop, bounded=False)
    ]
    names = default_layers(model)
    timing = {"input": conv_timing[0]}
    for i in range(len(convs)):
        timing[f"conv{i}"] = conv_timing[i + 1]
    for name in names:
        if not name.startswith("conv"):
            timing[name] = conv_timing[-1]
    timing["output"] = conv_timing[-1]
    chosen = layers if layers is not None else names
    if isinstance(chosen, (list, tuple)):
        chosen = {n: names.get(n, n) for n in chosen}
    return ModelSpec(
        model,
        chosen,
        labels,
        blank,
        description={
            "arch": f"huggingface:{type(model).__name__}",
            "source": source,
            "config": {
                k: getattr(config, k, None)
                for k in ("hidden_size", "num_hidden_layers", "conv_dim", "vocab_size")
            },
        },
        output="logits",
        features=features,
        timing={n: t for n, t in timing.items() if n in chosen or n in ("input", "output")},
        crop_ms=crop_ms,
        model_input=_waveform_batch,
    )


def _waveform_batch(x):
    """The front end's ``(B, 1, N)`` as the ``(B, N)`` input_values of the model."""
    return x[:, 0]
