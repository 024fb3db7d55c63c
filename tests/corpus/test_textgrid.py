import pytest
import soundfile as sf

from gradnap.corpus.textgrid import (
    Alignment,
    AlignmentError,
    find_alignment,
    read_textgrid,
    write_textgrid,
)
from gradnap.data import read_corpus
from tests.conftest import tone

ALIGNMENT = Alignment(
    words=[("the", 0.1, 0.3), ("cat", 0.3, 0.7)],
    phones=[
        ("sil", 0.0, 0.1),
        ("DH", 0.1, 0.2),
        ("AH", 0.2, 0.3),
        ("K", 0.3, 0.45),
        ("AE", 0.45, 0.6),
        ("T", 0.6, 0.7),
        ("sil", 0.7, 0.8),
    ],
    duration=0.8,
)

MFA = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.0
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 1.0
        intervals: size = 3
        intervals [1]:
            xmin = 0
            xmax = 0.2
            text = ""
        intervals [2]:
            xmin = 0.2
            xmax = 0.6
            text = "Hat"
        intervals [3]:
            xmin = 0.6
            xmax = 1.0
            text = "<unk>"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1.0
        intervals: size = 6
        intervals [1]:
            xmin = 0
            xmax = 0.1
            text = ""
        intervals [2]:
            xmin = 0.1
            xmax = 0.2
            text = "sp"
        intervals [3]:
            xmin = 0.2
            xmax = 0.3
            text = "hh"
        intervals [4]:
            xmin = 0.3
            xmax = 0.5
            text = "AE1"
        intervals [5]:
            xmin = 0.5
            xmax = 0.6
            text = "T"
        intervals [6]:
            xmin = 0.6
            xmax = 1.0
            text = "spn"
"""


def test_round_trip(tmp_path):
    path = write_textgrid(tmp_path / "a.TextGrid", ALIGNMENT)
    back = read_textgrid(path)
    assert back.words == ALIGNMENT.words
    assert back.phones == ALIGNMENT.phones
    assert back.duration == pytest.approx(0.8)
    assert not list(tmp_path.glob(".*part"))


def test_mfa_style(tmp_path):
    (tmp_path / "m.TextGrid").write_text(MFA)
    a = read_textgrid(tmp_path / "m.TextGrid")
    assert a.phones == [
        ("sil", 0.0, 0.2),
        ("HH", 0.2, 0.3),
        ("AE", 0.3, 0.5),
        ("T", 0.5, 0.6),
        ("spn", 0.6, 1.0),
    ]
    assert a.words == [("hat", 0.2, 0.6), ("<unk>", 0.6, 1.0)]


def test_ipa_is_rejected(tmp_path):
    (tmp_path / "ipa.TextGrid").write_text(MFA.replace('"AE1"', '"æ"'))
    with pytest.raises(AlignmentError, match=r"ipa.TextGrid: phone 'æ' is not ARPAbet"):
        read_textgrid(tmp_path / "ipa.TextGrid")


def test_missing_tier_and_garbage(tmp_path):
    (tmp_path / "w.TextGrid").write_text(MFA.replace('name = "phones"', 'name = "other"'))
    with pytest.raises(AlignmentError, match="no 'phones' tier"):
        read_textgrid(tmp_path / "w.TextGrid")
    (tmp_path / "g.TextGrid").write_text("garbage")
    with pytest.raises(AlignmentError, match="g.TextGrid: unreadable TextGrid"):
        read_textgrid(tmp_path / "g.TextGrid")


def test_reader_rejects_a_textgrid_far_from_its_audio(tmp_path):
    (tmp_path / "s").mkdir()
    sf.write(tmp_path / "s" / "u.wav", tone(0.8), 16000)
    (tmp_path / "s" / "u.txt").write_text("the cat")
    write_textgrid(tmp_path / "s" / "u.TextGrid", ALIGNMENT)
    utt = read_corpus(tmp_path)[0]
    assert find_alignment(utt).phones == ALIGNMENT.phones
    sf.write(tmp_path / "s" / "u.wav", tone(2.0), 16000)
    utt = read_corpus(tmp_path)[0]
    with pytest.raises(AlignmentError, match="ends at 0.800 s but its audio lasts 2.000 s"):
        find_alignment(utt)
    (tmp_path / "s" / "u.TextGrid").unlink()
    with pytest.raises(AlignmentError, match="no TextGrid found for u"):
        find_alignment(utt)
