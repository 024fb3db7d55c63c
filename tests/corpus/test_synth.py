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
    assert len(available_voices()) == len([v for v in VOICES if not v.non_free])
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


@pytest.mark.skipif(get_voice("piper-joe").unavailable() is not None, reason="piper not installed")
def test_piper_voice_gets_timings_from_the_aligner(tmp_path):
    """Piper gives no timings: the aligner's words and phones cover the audio, in order."""
    from gradnap.corpus.engines import Job, piper

    text = "the birch canoe slid on the smooth planks"
    slow, fast = piper.synthesize(
        "en_US-joe-medium", [Job("a", text, 1.2), Job("b", text, 0.85)], tmp_path
    )
    for s in (slow, fast):
        assert " ".join(w[0] for w in s.words) == text
        assert {p[0] for p in s.phones} <= PHONES
        assert s.phones[-1][2] == pytest.approx(len(s.audio) / 16000)
        starts = [p[1] for p in s.phones]
        assert starts == sorted(starts)
    assert len(slow.audio) > 1.1 * len(fast.audio)  # length_scale stretches time


def test_non_free_voices_need_the_opt_in(tmp_path):
    non_free = [v for v in VOICES if v.non_free]
    assert {v.engine for v in non_free} == {"mbrola", "pico"}
    assert not set(available_voices()) & set(non_free)
    with pytest.raises(ValueError, match="--non-free"):
        synthesize_corpus(tmp_path / "c", ["mbrola-us1", "flite-rms"], n_sentences=2)


def test_mbrola_pho_timings_by_hand():
    from gradnap.corpus.engines.mbrola import parse_pho
    from gradnap.corpus.phones import PhoneMapError

    pho = "; comment\n_\t100\nD\t65\n@\t24\t 0 179 100 191\nl=\t80\n\n_\t50\n_\t50\n"
    phones = parse_pho(pho, stretch=2.0, lag=0.0)
    assert [p[0] for p in phones] == ["sil", "DH", "AH", "AH", "L", "sil"]
    assert phones[1] == ("DH", 0.2, pytest.approx(0.33))
    assert phones[-1] == ("sil", pytest.approx(0.538), pytest.approx(0.738))  # two merged
    lagged = parse_pho(pho, 1.0, 0.023)
    assert lagged[0][1] == 0.0 and lagged[1][1] == pytest.approx(0.123)
    with pytest.raises(PhoneMapError, match="Q"):
        parse_pho("Q\t10\n", 1.0, 0.0)


@pytest.mark.skipif(
    any(get_voice(v).unavailable() for v in ("mbrola-us1", "pico-en-us", "flite-rms")),
    reason="opt-in voices not installed (scripts/enable-non-free-voices.sh)",
)
def test_synth_with_the_non_free_voices(tmp_path):
    out = tmp_path / "c"
    manifest = synthesize_corpus(
        out,
        ["mbrola-us1", "mbrola-us3", "pico-en-us", "flite-rms"],
        n_sentences=6,
        seed=1,
        progress=False,
        non_free=True,
    )
    assert manifest["failed"] == []
    for split in ("train", "test"):
        for utt in read_corpus(out / split):
            alignment = find_alignment(utt)
            assert {p[0] for p in alignment.phones} <= PHONES
            assert " ".join(w[0] for w in alignment.words) == utt.text
