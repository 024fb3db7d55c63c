"""A run that cannot give a profile says so before the work, or at the end, in one line."""

import pytest
import torch

import gradnap
from gradnap.corpus.textgrid import Alignment, write_textgrid
from gradnap.data import read_corpus
from gradnap.models import Wav2Letter
from gradnap.profiling import ModelSpec


@pytest.fixture(scope="module")
def spec():
    torch.manual_seed(0)
    return ModelSpec.from_wav2letter(Wav2Letter.from_preset("tiny").train(False))


def test_no_group_at_the_end_is_a_clear_error(small_corpus, spec):
    corpus = read_corpus(small_corpus)
    for utt in corpus:  # phones only: grouping by word labels no event
        write_textgrid(
            utt.audio.with_suffix(".TextGrid"),
            Alignment([], [("AH", 0.0, utt.duration)], utt.duration),
        )
    with pytest.raises(ValueError, match="none fell in a group of word"):
        gradnap.profiles(spec, corpus, ["conv11"], ["word"], progress=False, limit=2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"group_by": []}, "give at least one grouping"),
        ({"limit": 0}, "--limit must be"),
        ({"batch_events": 0}, "--batch-events must be"),
        ({"crop_width": 0}, "--crop-width must be"),
        ({"device": "tpu"}, "--device tpu"),
    ],
)
def test_bad_settings_before_the_work(small_corpus, spec, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gradnap.profiles(spec, small_corpus, progress=False, **kwargs)
