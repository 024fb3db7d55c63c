"""Model-randomization sanity check after Adebayo et al. 2018 (the paper's reference 2).

The trained model's weights are re-initialized cascading from the top layer down; at each
step the profiles are recomputed with the trained model's events, classes and labels, and
compared with the trained model's profiles by Spearman rank correlation (signed, and of
absolute values). A method whose profiles do not depend on the model would keep a high
correlation however many layers are randomized.

Models: Wav2Letter (its conv layers), any :class:`gradnap.ModelSpec` without a fast path
(e.g. a Hugging Face ``*ForCTC`` model: its profiled layers, top first, each module's
parameters reset), and Whisper (token events: the trained model's greedy transcript is
teacher-forced into every randomized copy; levels ``decoder`` (everything above the
encoder's last layer: its final layer norm, the decoder, the tied token embeddings and
output projection), then each encoder layer top down, ``conv2``, ``conv1``).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import xarray as xr
from scipy.stats import spearmanr
from tqdm.auto import tqdm

from gradnap.profiling.groupings import needs
from gradnap.profiling.method import make_variants
from gradnap.profiling.run import Profiler, as_spec
from gradnap.profiling.spec import ModelSpec

DEFAULT_VARIANTS = ("gradnap", "navai")


def _reset(module: torch.nn.Module) -> None:
    """Fresh random weights for every submodule that has its own ``reset_parameters``."""
    for m in module.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()


def randomized(spec: ModelSpec, down_to: str, seed: int = 0) -> ModelSpec:
    """A copy of ``spec`` whose layers from the top down to ``down_to`` (inclusive) have
    fresh random weights (each layer's own ``reset_parameters``)."""
    if spec.description.get("arch") == "wav2letter":
        new = ModelSpec.from_wav2letter(copy.deepcopy(spec.model))
        layers = {layer.name: layer.conv for layer in new.stack.layers}
    elif spec.stack is None:  # the copy keeps its layers' modules those of its model
        new = copy.deepcopy(spec)
        layers = dict(new.layers)
    else:
        raise ValueError("the sanity check supports Wav2Letter and generic ModelSpec models")
    names = list(layers)
    if down_to not in names:
        raise KeyError(f"unknown layer {down_to!r}; layers are {', '.join(names)}")
    torch.manual_seed(seed)
    for name in reversed(names[names.index(down_to) :]):
        _reset(layers[name])
    return new


def token_levels(model) -> list[str]:
    """A Whisper model's randomization levels, top first: ``decoder``, the encoder's
    layers top down, ``conv2``, ``conv1``."""
    n = len(model.model.encoder.layers)
    return ["decoder", *(f"encoder.layers.{i}" for i in reversed(range(n))), "conv2", "conv1"]


def randomized_tokens(model, down_to: str, seed: int = 0):
    """A copy of a Whisper model whose levels (:func:`token_levels`) from the top down to
    ``down_to`` (inclusive) have fresh random weights."""
    levels = token_levels(model)
    if down_to not in levels:
        raise KeyError(f"unknown level {down_to!r}; levels are {', '.join(levels)}")
    new = copy.deepcopy(model)
    enc = new.model.encoder
    torch.manual_seed(seed)
    for level in levels[: levels.index(down_to) + 1]:
        if level == "decoder":
            _reset(new.model.decoder)  # its token embeddings are the tied output projection
            _reset(enc.layer_norm)
        else:
            _reset(new.get_submodule("model.encoder." + level.removeprefix("encoder.")))
    return new.eval()


def _profile(spec, items, layers, group_by, variants, classes=None):
    # the comparison needs the profiles only, not the top events
    prof = Profiler(spec, layers=layers, group_by=group_by, variants=variants, top_events=0)
    for i, (x, speaker, alignment, text) in enumerate(items):
        prof.update(x, speaker, alignment, text, classes=None if classes is None else classes[i])
    return prof.result()


def _profile_tokens(model, items, tokens, options):
    from gradnap.profiling.token_profile import TokenProfiler

    prof = TokenProfiler(model, **options)
    for i, (x, speaker, alignment, text) in enumerate(items):
        prof.update(x, speaker, alignment, text, index=i, tokens=tokens[i])
    return prof.result()


def cascading_randomization(
    model,
    data,
    layers=None,
    levels=None,
    group_by=None,
    limit: int | None = None,
    seed: int = 0,
    progress: bool = True,
    variants=DEFAULT_VARIANTS,
    token_options: dict | None = None,
) -> xr.Dataset:
    """Spearman correlations between trained and randomized profiles.

    ``model``: a Wav2Letter, a :class:`gradnap.ModelSpec` or a Whisper model (token
    events). ``data`` is a corpus folder, :class:`gradnap.Corpus` or list of utterances;
    ``levels`` the layers to randomize down to (default every layer, top first; Whisper:
    :func:`token_levels`); ``layers`` the profiled layers; ``group_by`` the groupings
    (default grapheme; Whisper: token); ``variants`` the profile variants compared (names or
    :class:`~gradnap.profiling.method.Variant` objects; default gradnap and navai);
    ``token_options``: more keyword arguments of the Whisper :class:`TokenProfiler`.
    Returns variables ``spearman_<variant>`` and ``spearman_abs_<variant>`` over
    (randomized_down_to, layer).

    >>> table = cascading_randomization(gradnap.load(), "corpus/", limit=20)  # doctest: +SKIP
    """
    from gradnap.profiling.driver import FeatureDataset, corpus_utterances
    from gradnap.profiling.token_profile import TokenProfiler, is_token_model

    token = is_token_model(model)
    group_by = list(group_by or (["token"] if token else ["grapheme"]))
    if token:
        options = {"layers": layers, "group_by": group_by, "variants": variants,
                   **(token_options or {})}  # fmt: skip
        trained_prof = TokenProfiler(model, **options)
        trained_prof._validate()  # unknown layers and groupings, before any work
        front, layers = trained_prof.front_end, trained_prof.layers_
        levels = list(levels or token_levels(model))
        for level in levels:
            if level not in token_levels(model):
                raise KeyError(f"unknown level {level!r}; levels are {token_levels(model)}")
    else:
        spec = as_spec(model)
        front, layers = spec.front_end, spec.check_layers(layers)
        names = list(spec.layers) if spec.stack is None else [x.name for x in spec.stack.layers]
        levels = list(levels or reversed(names))
        unknown = [level for level in levels if level not in names]
        if unknown:
            raise KeyError(f"unknown level(s) {', '.join(unknown)}; layers are {', '.join(names)}")
    utterances, root = corpus_utterances(data, limit)
    need = needs(group_by, "alignment")
    dataset = FeatureDataset(utterances, range(len(utterances)), front, None, root, need)
    items = [dataset[k][1:] for k in range(len(dataset))]  # (x, speaker, alignment, text)
    if token:
        tokens = [trained_prof.transcribe(x) for x, *_ in items]
        trained = _profile_tokens(model, items, tokens, options)

        def profile_at(level):
            return _profile_tokens(randomized_tokens(model, level, seed), items, tokens, options)
    else:
        with torch.no_grad():
            classes = [spec.forward_with_activations(x[None])[0][0].argmax(0) for x, *_ in items]
        trained = _profile(spec, items, layers, group_by, variants)

        def profile_at(level):
            return _profile(randomized(spec, level, seed), items, layers, group_by, variants,
                            classes)  # fmt: skip

    names = [v.name for v in make_variants(variants)]
    out = {
        f"spearman{a}_{v}": np.full((len(levels), len(layers)), np.nan)
        for v in names
        for a in ("", "_abs")
    }
    for i, level in enumerate(
        tqdm(levels, desc="sanity check", unit="level", disable=not progress)
    ):
        rand = profile_at(level)
        for j, layer in enumerate(layers):
            a, b = trained[layer].to_dataset(), rand[layer].to_dataset()
            # (token events: a phoneme group may move with the randomized alignment)
            b = b.reindex(group=a["group"].values)
            for v in names:
                x, y = a[v].values.ravel(), b[v].values.ravel()
                out[f"spearman_{v}"][i, j] = _spearman(x, y)
                out[f"spearman_abs_{v}"][i, j] = _spearman(np.abs(x), np.abs(y))
    ds = xr.Dataset(
        {k: (("randomized_down_to", "layer"), v) for k, v in out.items()},
        coords={"randomized_down_to": levels, "layer": layers},
        attrs={
            "title": "cascading model randomization (Adebayo et al. 2018)",
            "utterances": len(items),
            "group_by": ",".join(group_by),
            "seed": seed,
            "events": int(trained["n_events"]),
            "event_kind": "token" if token else "frame",
        },
    )
    return ds


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    both = np.isfinite(x) & np.isfinite(y)
    x, y = x[both], y[both]
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)
