"""What does this neuron listen to: the audio of the events where a neuron's aligned
activation is largest, and their mean aligned spectrogram.

A profile result keeps, per (group, layer, neuron), the top events by aligned activation
``A_l[n, tau_l]`` (:mod:`gradnap.profiling.topevents`: ``top_activation``,
``top_utterance``, ``top_time``) and, in its configuration, the corpus folder and every
utterance's id and audio file. :func:`listen` cuts each event's clip of +-``half_width``
seconds around its alignment time from the corpus audio (read with
:func:`gradnap.audio.io.load_audio`, zeros beyond the utterance's ends) and averages the
log-mel input windows around the same times.

>>> heard = listen(tree, "conv3", "phoneme:AE", neuron=17)  # doctest: +SKIP
>>> heard.clips[0].audio.shape, heard.spectrogram.dims  # doctest: +SKIP
((8000,), ('frequency', 'offset'))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from gradnap.audio.features import FeatureConfig, features
from gradnap.audio.io import load_audio
from gradnap.profiling.result import config_of
from gradnap.profiling.sensitivity import gather_window


@dataclass
class Clip:
    """One top event: its ``rank`` (0: largest aligned activation), ``utterance`` id,
    alignment ``time`` (s, in the utterance), aligned ``activation``, and ``audio``
    (float32, mono, ``2 * round(half_width * sample_rate)`` samples; the alignment point
    is sample ``len(audio) // 2``) at ``sample_rate`` Hz."""

    rank: int
    utterance: str
    time: float
    activation: float
    audio: np.ndarray
    sample_rate: int


@dataclass
class Listening:
    """The top events of one neuron of one layer for one group: their ``clips`` (ranked)
    and ``spectrogram``, the mean log-mel input window around their alignment times,
    ``(frequency, offset)`` (mel bins x input frames from the alignment point; coordinates
    ``frequency`` in Hz and ``offset_ms`` in ms; natural log of the mel power, not
    normalized; NaN when there are no events)."""

    layer: str
    group: str
    neuron: int
    clips: list[Clip]
    spectrogram: xr.DataArray


class Listener:
    """Cuts clips from the corpus of one profile result; utterances read once (kept).

    ``corpus`` (optional) replaces the corpus folder recorded in the result (a moved
    corpus); audio paths recorded relative to it are looked up there."""

    def __init__(self, tree: xr.DataTree, corpus: str | Path | None = None):
        self.tree = tree
        self.corpus = corpus
        self._cache: dict[int, tuple[np.ndarray, int, torch.Tensor]] = {}

    def _config(self) -> dict:
        if "_cfg" not in self.__dict__:
            self._cfg = config_of(self.tree)
        return self._cfg

    def feature_config(self) -> FeatureConfig:
        """The model's framing, without normalization (a log-mel in natural-log units)."""
        given = self._config().get("features") or {}
        return FeatureConfig.from_dict({**given, "normalize": "none"})

    def audio_path(self, index: int) -> Path:
        """The audio file of the run's utterance ``index``."""
        cfg = self._config()
        root = self.corpus or cfg.get("corpus")
        audio = (cfg.get("utterance_audio") or [None] * (index + 1))[index]
        if audio is None:  # an older result: find the utterance by id
            from gradnap.data.corpus import read_corpus

            if root is None:
                raise ValueError("the result records no corpus: pass corpus=")
            uid = cfg["utterance_ids"][index]
            found = {u.id: u.audio for u in read_corpus(root, skip_bad=True)}
            if uid not in found:
                raise KeyError(f"utterance {uid!r} is not in the corpus {root}")
            return Path(found[uid])
        path = Path(audio)
        if not path.is_absolute():
            if root is None:
                raise ValueError("the result records no corpus: pass corpus=")
            path = Path(root) / path
        return path

    def _utterance(self, index: int) -> tuple[np.ndarray, int, torch.Tensor]:
        if index not in self._cache:
            wav, sr = load_audio(self.audio_path(index))
            wav = wav.mean(axis=1) if wav.ndim == 2 else wav
            self._cache[index] = (wav, sr, features(wav, sr, self.feature_config()))
        return self._cache[index]

    def neuron(self, layer: str, group: str, neuron: int, half_width: float = 0.25) -> Listening:
        """The top events of ``neuron`` (its coordinate value) in ``layer`` for ``group``."""
        ds = self.tree[layer].to_dataset()
        if "top_utterance" not in ds:
            raise KeyError(f"{layer}: the result keeps no top events (profiled with top_events=0?)")
        if group not in ds["group"].values:
            raise KeyError(f"no group {group!r} in this result")
        sel = ds[["top_utterance", "top_time", "top_activation"]].sel(group=group, neuron=neuron)
        fcfg = self.feature_config()
        half = int(round(half_width / fcfg.hop_seconds))  # spectrogram frames each side
        ids = self._config().get("utterance_ids") or []
        clips, windows = [], []
        for rank, (u, t, a) in enumerate(
            zip(sel["top_utterance"].values, sel["top_time"].values, sel["top_activation"].values)
        ):
            if u < 0:
                continue
            wav, sr, logmel = self._utterance(int(u))
            clips.append(
                Clip(rank, ids[u] if u < len(ids) else str(u), float(t), float(a),
                     cut(wav, sr, float(t), half_width), sr)
            )  # fmt: skip
            centre = int(round(float(t) / fcfg.hop_seconds))
            start = torch.tensor([centre - half])
            silence = float(np.log(fcfg.floor))  # outside the utterance: digital silence
            window = gather_window(logmel - silence, start, 2 * half + 1)[0] + silence
            windows.append(window.double())
        mean = (
            torch.stack(windows).mean(0).numpy()
            if windows
            else np.full((fcfg.n_mels, 2 * half + 1), np.nan)
        )
        offset = np.arange(-half, half + 1)
        spectrogram = xr.DataArray(
            mean,
            dims=("frequency", "offset"),
            coords={
                "frequency": ("frequency", fcfg.mel_frequencies(), {"units": "Hz"}),
                "offset": offset,
                "offset_ms": ("offset", offset * fcfg.hop_seconds * 1000, {"units": "ms"}),
            },
            name="mean_log_mel",
            attrs={"long_name": "mean log-mel input around the top events", "units": "ln power"},
        )
        return Listening(layer, group, int(neuron), clips, spectrogram)


def cut(wav: np.ndarray, sample_rate: int, time: float, half_width: float = 0.25) -> np.ndarray:
    """``wav`` from ``time - half_width`` to ``time + half_width`` seconds, zero beyond its
    ends: ``2 * round(half_width * sample_rate)`` samples, ``time`` at the middle one
    (index ``len // 2``)."""
    half = int(round(half_width * sample_rate))
    centre = int(round(time * sample_rate))
    out = np.zeros(2 * half, dtype=np.float32)
    lo, hi = centre - half, centre + half
    src = wav[max(lo, 0) : max(min(hi, len(wav)), 0)]
    if len(src):
        out[max(lo, 0) - lo : max(lo, 0) - lo + len(src)] = src
    return out


def listen(
    tree: xr.DataTree,
    layer: str,
    group: str,
    neuron: int,
    corpus: str | Path | None = None,
    half_width: float = 0.25,
) -> Listening:
    """The top events of ``neuron`` in ``layer`` for ``group`` with their audio clips of
    +-``half_width`` s and mean aligned log-mel (:class:`Listening`). ``corpus`` replaces
    the corpus folder the result records. For many neurons of one result, a
    :class:`Listener` reads each utterance once."""
    return Listener(tree, corpus).neuron(layer, group, neuron, half_width)
