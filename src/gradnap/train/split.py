"""Which utterances train and which measure the dev error rate."""

from __future__ import annotations

from pathlib import Path

from gradnap.data.corpus import Corpus
from gradnap.data.validate import read_checked


def train_dev_split(
    corpus: str | Path,
    dev: str | Path | None = None,
    skip_bad: bool = False,
    dev_fraction=0.1,
    progress: bool = False,
    normalize_text: bool = False,
) -> tuple[Corpus, Corpus]:
    """The training and dev sets of a corpus folder: ``dev`` (another folder) when given;
    else the corpus's ``train/`` and ``dev/`` folders when it has both; else a fixed split
    by a hash of the utterance ids (``dev_fraction`` of them for dev,
    :meth:`Corpus.split`). Every utterance is checked (:func:`gradnap.data.validate.
    read_checked`: audio decoded in full); ``skip_bad`` and ``normalize_text`` as there (raises
    :class:`gradnap.CorpusError` otherwise).

    >>> train_set, dev_set = train_dev_split("synth/")  # doctest: +SKIP
    """
    corpus = Path(corpus)

    def read_corpus(path, skip_bad):
        return read_checked(
            path, skip_bad=skip_bad, progress=progress, normalize_text=normalize_text
        )

    if dev is not None:
        return read_corpus(corpus, skip_bad=skip_bad), read_corpus(dev, skip_bad=skip_bad)
    if (corpus / "train").is_dir() and (corpus / "dev").is_dir():
        return (
            read_corpus(corpus / "train", skip_bad=skip_bad),
            read_corpus(corpus / "dev", skip_bad=skip_bad),
        )
    return read_corpus(corpus, skip_bad=skip_bad).split(dev_fraction)
