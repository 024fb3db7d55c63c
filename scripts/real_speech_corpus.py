"""Lay out the transcribed real recordings of Debian's pocketsphinx-testdata for the reader.

    apt-get install pocketsphinx-testdata        # scripts/setup.sh does this as root
    python scripts/real_speech_corpus.py --out build/real-speech [--no-align]

11 utterances, 37.2 s, in LibriSpeech layout (``SPEAKER/1/SPEAKER-1-UTT.wav`` with
``SPEAKER-1.trans.txt``), the "speaker" being the source:

- ``librivox``: 5 clips of one LibriVox reader (Sense and Sensibility, public domain),
  24.7 s, transcripts from ``librivox/transcription``;
- ``cards``: 5 clips of playing-card names, 9.6 s, ``cards/cards.transcription``;
- ``goforward``: ``goforward.raw`` (raw 16 kHz s16le, 2.8 s), whose transcript is the
  sentence its grammar ``goforward.gram`` spells out: "go forward ten meters".

Transcripts are normalised with the synthesizer's normaliser (lowercase, letters and
apostrophes, numbers spelled out). Unless ``--no-align``, ``gradnap align``'s pocketsphinx
aligner writes a words/phones TextGrid beside each file (about a second in all).
``corpus.json`` records where each utterance came from. Licence of the recordings and
transcripts: BSD-2 (CMU); the LibriVox recordings are public domain.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

SOURCE = Path("/usr/share/pocketsphinx/test/data")
GOFORWARD = "go forward ten meters"  # goforward.gram: public <move> = go forward ten meters;


def _transcription(path: Path) -> list[tuple[str, str]]:
    """``(file stem, text)`` from a sphinx transcription file: ``<s> text </s> (stem)``."""
    out = []
    for line in path.read_text().splitlines():
        match = re.match(r"\s*(?:<s>)?\s*(.*?)\s*(?:</s>)?\s*\(([^()]+)\)\s*$", line)
        if match:
            out.append((match.group(2), match.group(1)))
    return out


def utterances(source: Path = SOURCE) -> list[dict]:
    """The utterances: ``{"id", "speaker", "source", "text"}`` (text not yet normalised)."""
    found = []
    for speaker, folder, trans in [
        ("librivox", source / "librivox", "transcription"),
        ("cards", source / "cards", "cards.transcription"),
    ]:
        for stem, text in _transcription(folder / trans):
            uid = f"{speaker}-1-{stem.rsplit('-', 1)[-1]}"
            found.append(dict(id=uid, speaker=speaker, source=str(folder / f"{stem}.wav"),
                              text=text))  # fmt: skip
    found.append(dict(id="goforward-1-000", speaker="goforward",
                      source=str(source / "goforward.raw"), text=GOFORWARD))  # fmt: skip
    return found


def layout(out: Path, source: Path = SOURCE, align: bool = True) -> list[dict]:
    """Write the corpus under ``out``; return the utterance records."""
    from gradnap.corpus.sentences import normalize

    if not (source / "librivox" / "transcription").is_file():
        raise SystemExit(
            f"{source}: pocketsphinx-testdata is missing; install it with "
            f"apt-get install -y pocketsphinx-testdata"
        )
    records = utterances(source)
    lines: dict[Path, list[str]] = {}
    for rec in records:
        folder = out / rec["speaker"] / "1"
        folder.mkdir(parents=True, exist_ok=True)
        rec["text"] = normalize(rec["text"])
        src, dst = Path(rec["source"]), folder / f"{rec['id']}.wav"
        if src.suffix == ".raw":
            pcm = np.fromfile(src, dtype="<i2")
            sf.write(dst, pcm, 16000, subtype="PCM_16")
        else:
            shutil.copyfile(src, dst)
        rec["seconds"] = round(sf.info(dst).duration, 3)
        lines.setdefault(folder / f"{rec['speaker']}-1.trans.txt", []).append(
            f"{rec['id']} {rec['text']}"
        )
    for path, rows in lines.items():
        path.write_text("\n".join(rows) + "\n")
    if align:
        from gradnap.corpus.align import align_corpus
        from gradnap.data import read_corpus

        written, failures, _ = align_corpus(read_corpus(out), progress=False)
        for uid, why in failures:
            print(f"not aligned: {uid}: {why}", file=sys.stderr)
    manifest = dict(
        source="Debian pocketsphinx-testdata (BSD-2, CMU; LibriVox recordings public domain)",
        utterances=records,
        seconds=round(sum(r["seconds"] for r in records), 2),
    )
    (out / "corpus.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return records


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="corpus folder to write")
    ap.add_argument("--source", type=Path, default=SOURCE, help="pocketsphinx test data")
    ap.add_argument("--no-align", action="store_true", help="no phone TextGrids")
    args = ap.parse_args(argv)
    records = layout(args.out, args.source, align=not args.no_align)
    total = sum(r["seconds"] for r in records)
    print(f"wrote {len(records)} utterances ({total:.1f} s) to {args.out}")


if __name__ == "__main__":
    main()
