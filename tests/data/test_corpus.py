"""The reader on corpora the tests write, including every malformed case."""

import numpy as np
import pytest
import soundfile as sf

from gradnap.data import CorpusError, read_corpus
from gradnap.data.corpus import Utterance
from tests.conftest import tone, write_librispeech


def test_librispeech_layout(small_corpus):
    corpus = read_corpus(small_corpus)
    assert len(corpus) == 6 and corpus.skipped == []
    assert corpus.speakers() == ["19", "84"]
    u = corpus[0]
    assert isinstance(u, Utterance)
    assert (u.id, u.text, u.speaker) == ("19-198-0000", "hello world", "19")
    assert u.duration == pytest.approx(1.5)
    wav, sr = u.load()
    assert sr == 16000 and len(wav) == 24000
    assert corpus.duration == pytest.approx(9.0)


def test_plain_layout(tmp_path):
    (tmp_path / "alice").mkdir()
    sf.write(tmp_path / "alice" / "one.wav", tone(1.0), 16000)
    (tmp_path / "alice" / "one.txt").write_text("Good Morning\n")
    sf.write(tmp_path / "alice" / "two.flac", tone(1.0, sr=22050), 22050)
    (tmp_path / "alice" / "two.txt").write_text("good night")
    corpus = read_corpus(tmp_path)
    assert [(u.id, u.text, u.speaker, u.sample_rate) for u in corpus] == [
        ("one", "good morning", "alice", 16000),
        ("two", "good night", "alice", 22050),
    ]


def test_split_is_deterministic_and_disjoint(small_corpus):
    corpus = read_corpus(small_corpus)
    train, dev = corpus.split(0.5)
    train2, dev2 = corpus.split(0.5)
    assert [u.id for u in dev] == [u.id for u in dev2]
    assert not {u.id for u in train} & {u.id for u in dev}
    assert len(train) + len(dev) == len(corpus)


def chapter(small_corpus):
    return small_corpus / "19" / "198"


def break_missing_line(root):
    sf.write(chapter(root) / "19-198-0007.flac", tone(1.0), 16000)
    return "19-198-0007.flac", "no transcript line for 19-198-0007"


def break_no_audio(root):
    with open(chapter(root) / "19-198.trans.txt", "a") as f:
        f.write("19-198-0009 WHERE IS MY AUDIO\n")
    return "19-198.trans.txt", "line 4: no audio file for 19-198-0009"


def break_unreadable(root):
    (chapter(root) / "19-198-0001.flac").write_bytes(b"this is not a flac file" * 50)
    return "19-198-0001.flac", "unreadable audio"


def break_truncated_wav(root):
    (chapter(root) / "19-198-0001.flac").unlink()
    path = chapter(root) / "19-198-0001.wav"
    sf.write(path, tone(1.5), 16000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return "19-198-0001.wav", "truncated audio"


def break_empty_transcript(root):
    trans = chapter(root) / "19-198.trans.txt"
    trans.write_text(trans.read_text().replace("19-198-0002 ABC", "19-198-0002   "))
    return "19-198.trans.txt", "line 3: empty transcript for 19-198-0002"


def break_bad_characters(root):
    trans = chapter(root) / "19-198.trans.txt"
    trans.write_text(trans.read_text().replace("ABC", "CAFÉ 42"))
    return "19-198.trans.txt", "characters not in the alphabet for 19-198-0002: 'é' (U+00E9)"


def break_too_short(root):
    sf.write(chapter(root) / "19-198-0002.flac", tone(0.05), 16000)
    return (
        "19-198-0002.flac",
        "audio too short for its transcript (0.05 s gives 3 output frames, CTC needs 3",
    )


def break_too_short_repeats(root):
    trans = chapter(root) / "19-198.trans.txt"
    trans.write_text(trans.read_text().replace("ABC", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
    sf.write(chapter(root) / "19-198-0002.flac", tone(0.7), 16000)
    return "19-198-0002.flac", "CTC needs 77 for 39 characters"


CASES = [
    break_missing_line,
    break_no_audio,
    break_unreadable,
    break_truncated_wav,
    break_empty_transcript,
    break_bad_characters,
    break_too_short_repeats,
]


@pytest.mark.parametrize("breaker", CASES, ids=lambda f: f.__name__[6:])
def test_malformed_input(small_corpus, breaker):
    name, message = breaker(small_corpus)
    with pytest.raises(CorpusError) as info:
        read_corpus(small_corpus)
    text = str(info.value)
    assert name in text and message in text and "--skip-bad" in text
    corpus = read_corpus(small_corpus, skip_bad=True)
    assert len(corpus.skipped) == 1
    assert corpus.skipped[0].path.name == name
    assert message in str(corpus.skipped[0])
    assert len(corpus) >= 5  # the rest of the corpus is still usable


def test_too_short_is_reported_with_frames(small_corpus):
    break_too_short(small_corpus)
    # 0.05 s = 800 samples -> 6 feature frames -> 3 output frames < 3 letters? equal is fine
    corpus = read_corpus(small_corpus)
    assert "19-198-0002" in [u.id for u in corpus]
    trans = chapter(small_corpus) / "19-198.trans.txt"
    trans.write_text(trans.read_text().replace("ABC", "ABCD"))
    with pytest.raises(CorpusError, match="gives 3 output frames, CTC needs 4 for 4 characters"):
        read_corpus(small_corpus)


def test_truncated_flac_found_when_verifying_or_loading(small_corpus):
    path = chapter(small_corpus) / "19-198-0001.flac"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    corpus = read_corpus(small_corpus)  # the header is intact: found when decoding
    with pytest.raises(Exception, match="19-198-0001.flac: unreadable or truncated audio"):
        corpus[1].load()
    with pytest.raises(CorpusError, match="19-198-0001.flac: unreadable or truncated audio"):
        read_corpus(small_corpus, verify_audio=True)


def test_no_utterances(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README").write_text("nothing here")
    with pytest.raises(CorpusError, match="empty: no utterances found"):
        read_corpus(tmp_path / "empty")
    with pytest.raises(CorpusError, match="does not exist"):
        read_corpus(tmp_path / "nowhere")


def test_all_bad_is_still_an_error_with_skip_bad(tmp_path):
    write_librispeech(tmp_path, {"1-1-0001": "X"}, seconds=1.0)
    (tmp_path / "1" / "1" / "1-1.trans.txt").write_text("1-1-0001 ÜBER\n")
    with pytest.raises(CorpusError, match=r"no utterances found \(1 skipped as bad\)"):
        read_corpus(tmp_path, skip_bad=True)


def test_transcript_without_audio_plain_layout(tmp_path):
    sf.write(tmp_path / "a.wav", tone(1.0), 16000)
    (tmp_path / "a.txt").write_text("fine")
    (tmp_path / "b.txt").write_text("orphan")
    corpus = read_corpus(tmp_path, skip_bad=True)
    assert [u.id for u in corpus] == ["a"]
    assert "b.txt: transcript has no audio file" in str(corpus.skipped[0])


def test_hidden_and_partial_files_are_ignored(small_corpus):
    np.save(chapter(small_corpus) / ".hidden.npy", np.zeros(3))
    sf.write(chapter(small_corpus) / ".19-198-0005.flac", tone(1.0), 16000)
    assert len(read_corpus(small_corpus)) == 6
