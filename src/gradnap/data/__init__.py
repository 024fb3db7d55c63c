"""Corpora: the grapheme alphabet and the corpus reader."""

from gradnap.data.alphabet import BLANK, Alphabet
from gradnap.data.corpus import Corpus, CorpusError, Problem, Utterance, read_corpus

__all__ = ["BLANK", "Alphabet", "Corpus", "CorpusError", "Problem", "Utterance", "read_corpus"]
