import json
import shutil

import numpy as np
import pytest

from gradnap.corpus.phones import PHONES
from gradnap.corpus.sentences import normalize, sentences
from gradnap.corpus.synth import plan, synthesize_corpus
from gradnap.corpus.textgrid import find_alignment
from gradnap.corpus.voices import VOICES, available_voices, get_voice
from gradnap.data import Alphabet, read_corpus

ENGINES = shutil.which("festival") and shutil.which("flite") and shutil.which("espeak-ng")


def test_normalize():
    assert normalize("It's 42 o'clock -- really!") == "it's forty two o'clock really"
    assert normalize("'quoted' words") == "quoted words"
    assert normalize("café au lait") is None
    assert normalize("...") is None


def test_sentences_are_unique_and_in_the_alphabet():
    srcs = sentences()
    assert len(srcs["harvard"]) == 720
    everything = [s for src in srcs.values() for s in src]
    assert len(everything) == len(set(everything))
    alphabet = Alphabet()
    assert all(not alphabet.invalid(s) for s in everything[:5000])


def test_plan_keeps_test_sentences_and_the_held_out_person_out_of_train():
    texts = [f"sentence number {i}" for i in range(300)]
    voices = [
        get_voice(n)
        for n in ("festival-kal", "flite-kal16", "flite-slt", "flite-rms", "espeak-en-us")
    ]
    p = plan(voices, "flite-rms", texts, seed=1)
    train_texts = {j.text for _, j in p["train"]}
    for split in ("dev", "test", "test-unseen-voice"):
        assert not train_texts & {j.text for _, j in p[split]}
    for split in ("train", "dev", "test"):
        assert {v.person for v, _ in p[split]} <= {"kal", "slt", "espeak en-us"}
    assert {v.name for v, _ in p["test-unseen-voice"]} == {"flite-rms"}
    seen = {v.name for v, _ in p["test"]}
    assert seen == {"festival-kal", "flite-kal16", "flite-slt", "espeak-en-us"}
    assert p == plan(voices, "flite-rms", texts, seed=1)  # deterministic
    assert p != plan(voices, "flite-rms", texts, seed=2)
    stretches = [j.stretch for _, j in p["train"]]
    assert 0.85 <= min(stretches) and max(stretches) <= 1.2 and np.std(stretches) > 0.05


def test_voices_are_distinct_and_listed():
    assert len({v.name for v in VOICES}) == len(VOICES) >= 8
    assert len({(v.engine, v.engine_voice) for v in VOICES}) == len(VOICES)


@pytest.mark.skipif(not ENGINES, reason="festival, flite or espeak-ng not installed")
def test_synth_small_corpus(tmp_path):
    assert len(available_voices()) == len(VOICES)
    out = tmp_path / "c"
    manifest = synthesize_corpus(out, n_sentences=30, seed=3, jobs=2, progress=False)
    assert manifest["failed"] == []
    assert json.loads((out / "corpus.json").read_text())["seed"] == 3
    texts = {}
    for split in ("train", "dev", "test", "test-unseen-voice"):
        corpus = read_corpus(out / split)
        texts[split] = {u.text for u in corpus}
        for utt in corpus:
            alignment = find_alignment(utt)
            assert abs(alignment.duration - utt.duration) <= 0.03
            assert abs(alignment.end - utt.duration) <= 0.03
            assert {p[0] for p in alignment.phones} <= PHONES
            assert len(alignment.spoken_phones()) >= len(utt.text.split())
            assert " ".join(w[0] for w in alignment.words) == utt.text, utt.id
    assert not texts["train"] & (texts["test"] | texts["dev"])
    unseen = read_corpus(out / "test-unseen-voice")
    assert unseen.speakers() == ["105"]  # flite-rms
    assert "105" not in read_corpus(out / "train").speakers()
