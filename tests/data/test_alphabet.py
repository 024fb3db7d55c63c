import pytest

from gradnap.data import BLANK, Alphabet


def test_default_alphabet():
    a = Alphabet()
    assert len(a) == 29 and a.symbols[0] == BLANK and a.blank == 0
    assert a.decode(a.encode("don't stop")) == "don't stop"


def test_normalize_and_invalid():
    a = Alphabet()
    assert a.normalize("  HELLO\tWorld \n") == "hello world"
    assert a.invalid("café-1") == ["é", "-", "1"]


def test_ctc_min_frames_counts_repeats():
    a = Alphabet()
    assert a.ctc_min_frames("abc") == 3
    assert a.ctc_min_frames("hello") == 6
    assert a.ctc_min_frames("aaa") == 5


def test_encode_rejects_unknown():
    with pytest.raises(ValueError, match=r"'é' \(U\+00E9\)"):
        Alphabet().encode("é")
    with pytest.raises(ValueError, match="blank"):
        Alphabet(["a", "b"])
