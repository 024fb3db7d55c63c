"""Lay out the real LibriVox utterances of Debian's pocketsphinx-testdata for the reader.

    apt-get install pocketsphinx-testdata
    python scripts/librivox_corpus.py --out build/librivox

Writes ``OUT/reader/NAME.wav`` with ``NAME.txt`` beside it (5 utterances, 24.7 s, one
reader, public domain).
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

SOURCE = Path("/usr/share/pocketsphinx/test/data/librivox")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    if not (SOURCE / "transcription").is_file():
        raise SystemExit(f"{SOURCE}: missing; install Debian's pocketsphinx-testdata")
    folder = args.out / "reader"
    folder.mkdir(parents=True, exist_ok=True)
    for line in (SOURCE / "transcription").read_text().splitlines():
        match = re.match(r"<s> (.*) </s> \((.*)\)", line.strip())
        if not match:
            continue
        text, name = match.groups()
        shutil.copy(SOURCE / f"{name}.wav", folder / f"{name}.wav")
        (folder / f"{name}.txt").write_text(text + "\n")
    print(f"wrote {len(list(folder.glob('*.wav')))} utterances to {folder}")


if __name__ == "__main__":
    main()
