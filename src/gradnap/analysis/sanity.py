"""Model-randomization sanity check after Adebayo et al. 2018 (the paper's reference 2).

The trained model's weights are re-initialized cascading from the top layer down; at each
step the profiles are recomputed with the trained model's events, classes and labels, and
compared with the trained model's profiles by Spearman rank correlation (signed, and of
absolute values). A method whose profiles do not depend on the model would keep a high
correlation however many layers are randomized.
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


def randomized(spec: ModelSpec, down_to: str, seed: int = 0) -> ModelSpec:
    """A copy of ``spec`` whose layers from the top down to ``down_to`` (inclusive) have
    fresh random weights (each layer's own ``reset_parameters``)."""
    model = copy.deepcopy(spec.model)
    new = ModelSpec.from_wav2letter(model) if spec.description.get("arch") == "wav2letter" else None
    if new is None:
        raise ValueError("the sanity check supports Wav2Letter models")
    names = [layer.name for layer in new.stack.layers]
    if down_to not in names:
        raise KeyError(f"unknown layer {down_to!r}; layers are {', '.join(names)}")
    torch.manual_seed(seed)
    for layer in reversed(new.stack.layers[names.index(down_to) :]):
        layer.conv.reset_parameters()
    return new


def _profile(spec, items, layers, group_by, variants, classes=None):
    # the comparison needs the profiles only, not the top events
    prof = Profiler(spec, layers=layers, group_by=group_by, variants=variants, top_events=0)
    for i, (x, speaker, alignment, text) in enumerate(items):
        prof.update(x, speaker, alignment, text, classes=None if classes is None else classes[i])
    return prof.result()


def cascading_randomization(
    model,
    data,
    layers=None,
    levels=None,
    group_by=("grapheme",),
    limit: int | None = None,
    seed: int = 0,
    progress: bool = True,
    variants=DEFAULT_VARIANTS,
) -> xr.Dataset:
    """Spearman correlations between trained and randomized profiles.

    ``data`` is a corpus folder, :class:`gradnap.Corpus` or list of utterances; ``levels``
    the layers to randomize down to (default every conv layer, top first); ``layers`` the
    profiled layers; ``variants`` the profile variants compared (names or
    :class:`~gradnap.profiling.method.Variant` objects; default gradnap and navai).
    Returns variables ``spearman_<variant>`` and ``spearman_abs_<variant>`` over
    (randomized_down_to, layer).

    >>> table = cascading_randomization(gradnap.load(), "corpus/", limit=20)  # doctest: +SKIP
    """
    from gradnap.profiling.driver import FeatureDataset, corpus_utterances

    spec = as_spec(model)
    utterances, root = corpus_utterances(data, limit)
    need = needs(group_by, "alignment")
    dataset = FeatureDataset(
        utterances, range(len(utterances)), spec.feature_config, None, root, need
    )
    items = [dataset[k][1:] for k in range(len(dataset))]  # (x, speaker, alignment, text)
    layers = spec.check_layers(layers)
    with torch.no_grad():
        classes = [spec.model(x[None])[0].argmax(0) for x, *_ in items]
    names = [v.name for v in make_variants(variants)]
    trained = _profile(spec, items, layers, group_by, variants)
    levels = list(levels or [layer.name for layer in reversed(spec.stack.layers)])
    out = {
        f"spearman{a}_{v}": np.full((len(levels), len(layers)), np.nan)
        for v in names
        for a in ("", "_abs")
    }
    for i, level in enumerate(
        tqdm(levels, desc="sanity check", unit="level", disable=not progress)
    ):
        rand = _profile(randomized(spec, level, seed), items, layers, group_by, variants, classes)
        for j, layer in enumerate(layers):
            a, b = trained[layer].to_dataset(), rand[layer].to_dataset()
            b = b.sel(group=a["group"].values)
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
        },
    )
    return ds


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)
