import pytest

from gradnap.decode import error_rates


def test_known_strings():
    r = error_rates(["the cat sat"], ["the cat sit"])
    assert r["wer"] == pytest.approx(1 / 3)
    assert r["cer"] == pytest.approx(1 / 11)


def test_corpus_level_is_pooled_not_averaged():
    r = error_rates(["a b c d", "e"], ["a b c d", "f"])
    assert r["wer"] == pytest.approx(1 / 5)
    assert r["cer"] == pytest.approx(1 / 8)


def test_empty_hypothesis_and_errors():
    assert error_rates(["hello"], [""]) == {"cer": 1.0, "wer": 1.0}
    with pytest.raises(ValueError, match="empty"):
        error_rates([""], ["x"])
    with pytest.raises(ValueError, match="1 references but 2"):
        error_rates(["a"], ["a", "b"])
