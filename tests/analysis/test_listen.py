"""Listening to a neuron: clips of the right length and centre, zero-padded at the edges,
cut from the utterances the result names; the mean aligned log-mel against a plain crop."""

import shutil

import numpy as np
import pytest

import gradnap
from gradnap.analysis.listen import cut, listen
from gradnap.audio.features import FeatureConfig, features
from gradnap.audio.io import load_audio
from gradnap.data import read_corpus
from gradnap.models import Wav2Letter
from gradnap.profiling.result import config_of


def test_cut_is_centred_and_zero_padded():
    wav = np.arange(1, 16001, dtype=np.float32)  # sample i holds i + 1
    mid = cut(wav, 16000, 0.5)
    assert len(mid) == 8000 and mid[4000] == 8001  # sample 8000 at the middle
    np.testing.assert_array_equal(mid, wav[4000:12000])
    start = cut(wav, 16000, 0.1)  # 0.15 s before the utterance: zeros
    assert (start[:2400] == 0).all() and start[2400] == 1 and start[4000] == 1601
    end = cut(wav, 16000, 0.9)
    assert end[4000] == 14401 and end[5599] == 16000 and (end[5600:] == 0).all()
    assert (cut(wav, 16000, 3.0) == 0).all() and len(cut(wav, 8000, 0.0, 0.1)) == 1600


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    from tests.conftest import write_librispeech

    root = write_librispeech(
        tmp_path_factory.mktemp("c") / "corpus",
        {"19-198-0000": "HELLO", "19-198-0001": "ABC", "84-121-0000": "ZOO"},
        seconds=1.2,
    )
    model = Wav2Letter.from_preset("tiny").eval()
    tree = gradnap.profiles(
        model, root, layers=["input", "conv2"], include_blank=True, progress=False,
        variants=["navai"],
    )  # fmt: skip
    return root, tree


def test_listen_cuts_the_top_events_from_the_corpus(profiled):
    root, tree = profiled
    cfg = config_of(tree)
    corpus = read_corpus(root)
    assert cfg["corpus"] == str(root.resolve())
    assert cfg["utterance_ids"] == [u.id for u in corpus]
    ds = tree["conv2"].to_dataset()
    group = "speaker:19" if "speaker:19" in ds["group"].values else str(ds["group"].values[0])
    heard = listen(tree, "conv2", group, neuron=3)
    sel = ds.sel(group=group, neuron=3)
    assert len(heard.clips) == 5
    fcfg = FeatureConfig.from_dict({**cfg["features"], "normalize": "none"})
    crops = []
    for clip, u, t, a in zip(
        heard.clips, sel["top_utterance"].values, sel["top_time"].values,
        sel["top_activation"].values,
    ):  # fmt: skip
        assert clip.utterance == corpus[int(u)].id and clip.time == t and clip.activation == a
        wav, sr = load_audio(corpus[int(u)].audio)
        assert clip.sample_rate == sr == 16000 and clip.audio.shape == (8000,)
        np.testing.assert_array_equal(clip.audio, cut(wav, sr, t))
        logmel = features(wav, sr, fcfg).numpy()
        centre = int(round(t / 0.01))
        crop = np.full((128, 51), np.log(fcfg.floor), dtype=np.float64)
        for k in range(51):
            if 0 <= centre - 25 + k < logmel.shape[1]:
                crop[:, k] = logmel[:, centre - 25 + k]
        crops.append(crop)
    assert [c.activation for c in heard.clips] == sorted(
        (c.activation for c in heard.clips), reverse=True
    )
    spec = heard.spectrogram
    assert spec.dims == ("frequency", "offset") and spec.shape == (128, 51)
    assert float(spec["offset_ms"][0]) == -250 and spec["frequency"].attrs["units"] == "Hz"
    np.testing.assert_allclose(spec.values, np.mean(crops, axis=0), rtol=1e-6, atol=1e-6)


def test_a_moved_corpus_and_missing_groups(profiled, tmp_path):
    root, tree = profiled
    moved = tmp_path / "elsewhere"
    shutil.copytree(root, moved)
    group = str(tree["input"].to_dataset()["group"].values[0])
    here = listen(tree, "input", group, neuron=0)
    there = listen(tree, "input", group, neuron=0, corpus=moved)
    for a, b in zip(here.clips, there.clips):
        np.testing.assert_array_equal(a.audio, b.audio)
    with pytest.raises(KeyError, match="no group"):
        listen(tree, "input", "grapheme:nothing", neuron=0)
