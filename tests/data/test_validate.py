"""The check before a run: every utterance's audio and TextGrid, and the reader's silent
cases (duplicate ids, symlinked and unreadable folders, byte-order marks, tabs)."""

import os

import numpy as np
import pytest
import soundfile as sf
import torch

from gradnap.corpus.textgrid import Alignment, write_textgrid
from gradnap.data import CorpusError, read_corpus
from gradnap.data.validate import check_limit, read_checked, utterance_features, validate
from tests.conftest import tone

CHAPTER = ("19", "198")


def folder(root):
    return root / CHAPTER[0] / CHAPTER[1]


def add_textgrids(root, words=True):
    for flac in sorted(root.rglob("*.flac")):
        d = sf.info(str(flac)).duration
        phones = [("sil", 0.0, 0.3), ("HH", 0.3, 0.6), ("AH", 0.6, 1.0), ("sil", 1.0, d)]
        write_textgrid(
            flac.with_suffix(".TextGrid"),
            Alignment([("ha", 0.3, 1.0)] if words else [], phones, d),
        )


def test_a_good_corpus_passes(small_corpus):
    add_textgrids(small_corpus)
    corpus = read_corpus(small_corpus)
    assert validate(corpus, ["grapheme", "phoneme", "word"], root=corpus.root) == []


def test_every_bad_utterance_is_listed_with_its_file(small_corpus):
    add_textgrids(small_corpus)
    d = folder(small_corpus)
    flac = (d / "19-198-0001.flac").read_bytes()
    (d / "19-198-0001.flac").write_bytes(flac[: len(flac) // 2])  # truncated: header fine
    wav = tone(1.5)
    wav[100] = np.nan
    sf.write(d / "19-198-0002.wav", wav, 16000, subtype="FLOAT")
    (d / "19-198-0002.flac").unlink()
    (small_corpus / "84" / "121" / "84-121-0000.TextGrid").unlink()
    huge = tone(1.5) * np.float32(1e30)
    (small_corpus / "84" / "121" / "84-121-0001.flac").unlink()
    sf.write(small_corpus / "84" / "121" / "84-121-0001.wav", huge, 16000, subtype="FLOAT")
    with pytest.raises(CorpusError) as err:
        read_checked(small_corpus, group_by=["phoneme"])
    text = str(err.value)
    assert "4 bad utterance(s)" in text
    for name, why in [
        ("19-198-0001.flac", "truncated"),
        ("19-198-0002.wav", "NaN or infinite"),
        ("84-121-0000.flac", "no TextGrid"),
        ("84-121-0001.wav", "samples reach 3.3e+29"),
    ]:
        line = next(li for li in text.splitlines() if name in li)
        assert why in line, line
    corpus = read_checked(small_corpus, group_by=["phoneme"], skip_bad=True)
    assert [u.id for u in corpus] == ["19-198-0000", "84-121-0002"]
    assert len(corpus.skipped) == 4
    # grouping by grapheme needs no TextGrid: three are bad then
    assert len(read_checked(small_corpus, skip_bad=True).skipped) == 3


def test_textgrids_must_hold_what_the_grouping_needs(small_corpus):
    add_textgrids(small_corpus, words=False)
    problems = validate(read_corpus(small_corpus), ["word"])
    assert len(problems) == 6 and all("no word" in p.message for p in problems)
    assert all(p.path.suffix == ".TextGrid" for p in problems)
    assert validate(read_corpus(small_corpus), ["phoneme"]) == []
    tg = folder(small_corpus) / "19-198-0000.TextGrid"
    write_textgrid(tg, Alignment([], [("sil", 0.0, 1.5)], 1.5))
    (p,) = validate(read_corpus(small_corpus), ["phoneme"])
    assert p.path == tg and "no spoken phone" in p.message
    write_textgrid(tg, Alignment([], [("sil", 0.0, 3.0)], 3.0))
    (p,) = validate(read_corpus(small_corpus), ["phoneme"])
    assert p.path == tg and "does not belong to this audio" in p.message


def test_limit_is_checked_and_applies_before_the_check(small_corpus):
    (folder(small_corpus) / "19-198-0002.flac").write_bytes(b"not audio at all")
    for bad in (0, -1):
        with pytest.raises(ValueError, match="positive"):
            check_limit(bad)
        with pytest.raises(ValueError, match="positive"):
            read_checked(small_corpus, limit=bad)
    # the broken file is the third utterance: the header check of the reader sees it
    with pytest.raises(CorpusError, match="19-198-0002"):
        read_checked(small_corpus, limit=2)


def test_features_refused_naming_the_file(small_corpus):
    (folder(small_corpus) / "19-198-0000.flac").unlink()
    loud = tone(1.5) * np.float32(1e25)
    sf.write(folder(small_corpus) / "19-198-0000.wav", loud, 16000, subtype="FLOAT")
    utt = read_corpus(small_corpus)[0]
    with pytest.raises(ValueError, match="19-198-0000.wav: its features are not finite"):
        utterance_features(utt)
    assert torch.isfinite(utterance_features(read_corpus(small_corpus)[1])).all()


def test_duplicate_ids_are_refused(small_corpus):
    with open(folder(small_corpus) / "19-198.trans.txt", "a") as f:
        f.write("19-198-0000 HELLO AGAIN\n")
    with pytest.raises(CorpusError, match="duplicate id 19-198-0000"):
        read_corpus(small_corpus)
    corpus = read_corpus(small_corpus, skip_bad=True)
    assert "19-198-0000" not in [u.id for u in corpus] and len(corpus) == 5
    assert [p.message for p in corpus.skipped] == [
        f"line {n}: duplicate id 19-198-0000 (also at {folder(small_corpus)}/19-198.trans.txt "
        f"line {m})"
        for n, m in ((1, 4), (4, 1))
    ]


def test_symlinked_speaker_folders_are_followed_once(small_corpus, tmp_path):
    outside = tmp_path / "elsewhere"
    (small_corpus / "84").rename(outside)
    (small_corpus / "84").symlink_to(outside, target_is_directory=True)
    (small_corpus / "19" / "loop").symlink_to(small_corpus, target_is_directory=True)
    corpus = read_corpus(small_corpus)
    assert len(corpus) == 6 and corpus.speakers() == ["19", "84"]


def test_unreadable_folders_are_reported(small_corpus, monkeypatch):
    blocked = small_corpus / "84" / "121"
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path) == os.fspath(blocked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)  # chmod 000 does not stop root
    with pytest.raises(CorpusError, match=r"84/121: unreadable folder \(Permission denied\)"):
        read_corpus(small_corpus)
    assert len(read_corpus(small_corpus, skip_bad=True)) == 3


def test_byte_order_mark_and_tabs_are_read(small_corpus):
    trans = folder(small_corpus) / "19-198.trans.txt"
    lines = trans.read_text().splitlines()
    trans.write_bytes(("\ufeff" + "\n".join(li.replace(" ", "\t", 1) for li in lines)).encode())
    corpus = read_corpus(small_corpus)
    assert [u.text for u in corpus][:3] == ["hello world", "it's a test", "abc"]
