"""The reader on corpora as users have them: mp3/ogg/opus audio, ``.lab`` transcripts,
punctuation and digits (``normalize_text``), audio below 16 kHz."""

import warnings

import pytest
import soundfile as sf

from gradnap.data import CorpusError, read_corpus
from gradnap.data.validate import read_checked
from tests.conftest import tone

FORMATS = {".ogg": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS"), ".mp3": ("MP3", "MPEG_LAYER_III")}


def write(path, sr=16000, seconds=1.0, text="good morning", transcript=".txt"):
    """An audio file in the format its suffix names, and its transcript beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt, subtype = FORMATS.get(path.suffix, (None, None))
    if fmt and subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) cannot write {subtype}")
    try:
        sf.write(path, tone(seconds, sr=sr), sr, format=fmt, subtype=subtype)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        pytest.skip(f"soundfile cannot write {path.suffix} here: {exc}")
    path.with_suffix(transcript).write_text(text + "\n")


@pytest.mark.parametrize("suffix", [".ogg", ".opus", ".mp3"])
def test_compressed_audio(tmp_path, suffix):
    sr = 48000 if suffix == ".opus" else 16000  # Opus encodes at 8/12/16/24/48 kHz
    write(tmp_path / "alice" / f"one{suffix}", sr=sr)
    corpus = read_checked(tmp_path)  # every file decoded in full
    (u,) = corpus
    assert (u.id, u.text, u.speaker, u.sample_rate) == ("one", "good morning", "alice", sr)
    assert u.duration == pytest.approx(1.0, abs=0.1)
    wav, got = u.load()
    assert got == sr and len(wav) == u.num_samples


def test_lab_transcripts(tmp_path):
    write(tmp_path / "bob" / "a.wav", text="good night", transcript=".lab")
    write(tmp_path / "bob" / "b.flac", text="hello", transcript=".lab")
    (tmp_path / "bob" / "orphan.lab").write_text("no audio\n")
    corpus = read_corpus(tmp_path, skip_bad=True)
    assert [(u.id, u.text, u.speaker) for u in corpus] == [
        ("a", "good night", "bob"),
        ("b", "hello", "bob"),
    ]
    assert [(p.path.name, p.message) for p in corpus.skipped] == [
        ("orphan.lab", "transcript has no audio file (.flac, .wav, .mp3, .ogg or .opus)")
    ]


def test_txt_wins_over_lab(tmp_path):
    write(tmp_path / "c" / "a.wav", text="from the lab", transcript=".lab")
    (tmp_path / "c" / "a.txt").write_text("from the txt\n")
    assert [u.text for u in read_corpus(tmp_path)] == ["from the txt"]


def test_normalize_text(tmp_path):
    write(tmp_path / "d" / "a.wav", seconds=3.0, text="\"Hello, World!\" -- it's 42 O'Clock.")
    with pytest.raises(CorpusError, match="characters not in the alphabet for a"):
        read_corpus(tmp_path)
    with pytest.raises(CorpusError, match="characters not in the alphabet for a"):
        read_checked(tmp_path)
    (u,) = read_corpus(tmp_path, normalize_text=True)
    assert u.text == "hello world it's forty two o'clock"
    (u,) = read_checked(tmp_path, normalize_text=True)
    assert u.text == "hello world it's forty two o'clock"


def test_normalize_text_still_refuses_other_letters(tmp_path):
    write(tmp_path / "d" / "a.wav", text="café")
    with pytest.raises(CorpusError, match="characters not in the alphabet"):
        read_corpus(tmp_path, normalize_text=True)


def test_warning_below_16khz(tmp_path):
    write(tmp_path / "e" / "low.wav", sr=8000)
    write(tmp_path / "e" / "ok.wav", sr=16000)
    with pytest.warns(UserWarning, match=r"1 utterance\(s\) sampled below 16 kHz \(8000 Hz"):
        corpus = read_corpus(tmp_path)
    assert len(corpus) == 2


def test_no_warning_at_16khz(tmp_path):
    write(tmp_path / "e" / "ok.wav", sr=16000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_corpus(tmp_path)
