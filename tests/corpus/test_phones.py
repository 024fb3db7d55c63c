import pytest

from gradnap.corpus.phones import (
    ARPABET,
    ESPEAK,
    PHONES,
    RADIO,
    PhoneMapError,
    map_aligner,
    map_espeak,
    map_radio,
    split_interval,
)


def test_arpabet_has_39_phones():
    assert len(ARPABET) == 39 and len(PHONES) == 40


def test_radio_label_set():
    for p in ARPABET:
        assert map_radio(p.lower()) == [p]
    for label, target in RADIO.items():
        assert map_radio(label) == target and set(target) <= PHONES
    assert map_radio("pau") == ["sil"] and map_radio("ax") == ["AH"]
    assert map_radio("el") == ["AH", "L"]
    with pytest.raises(PhoneMapError, match="'zz'"):
        map_radio("zz")


def test_espeak_label_set():
    for label, target in ESPEAK.items():
        assert map_espeak(label) == target and set(target) <= PHONES, label
    assert map_espeak("'a") == ["AE"]  # stress marks are stripped
    assert map_espeak("aI@") == ["AY", "ER"]
    with pytest.raises(PhoneMapError, match="espeak-ng phoneme 'Q'"):
        map_espeak("Q")


@pytest.mark.parametrize(
    "label, phone",
    [
        ("AH0", "AH"),
        ("ah1", "AH"),
        ("ER2", "ER"),
        ("", "sil"),
        ("sp", "sil"),
        ("SIL", "sil"),
        ("spn", "spn"),
        ("+NSN+", "spn"),
        ("zh", "ZH"),
    ],
)
def test_aligner_labels(label, phone):
    assert map_aligner(label) == phone


@pytest.mark.parametrize("label", ["ʃ", "æ", "AX0", "a:"])
def test_non_arpabet_is_an_error(label):
    with pytest.raises(PhoneMapError, match="not ARPAbet"):
        map_aligner(label)


def test_split_interval():
    assert split_interval(1.0, 1.3, ["AY", "ER"]) == [("AY", 1.0, 1.15), ("ER", 1.15, 1.3)]
