"""The train/dev split: a dev folder, train/ and dev/ folders, or a fixed hash split."""

import shutil

from gradnap.train import train_dev_split


def test_three_ways_to_a_dev_set(small_corpus, tmp_path):
    train, dev = train_dev_split(small_corpus)
    ids = sorted(u.id for u in train) + sorted(u.id for u in dev)
    assert sorted(ids) == sorted(u.id for u in train_dev_split(small_corpus, small_corpus)[0])
    assert not {u.id for u in train} & {u.id for u in dev}
    assert train_dev_split(small_corpus)[1].utterances == dev.utterances  # deterministic
    # train/ and dev/ folders are used as such
    split = tmp_path / "split"
    shutil.copytree(small_corpus / "19", split / "train" / "19")
    shutil.copytree(small_corpus / "84", split / "dev" / "84")
    train, dev = train_dev_split(split)
    assert {u.speaker for u in train} == {"19"} and {u.speaker for u in dev} == {"84"}
    # an explicit dev folder wins
    train, dev = train_dev_split(split / "train", split / "dev")
    assert len(dev) == 3 and len(train) == 3
