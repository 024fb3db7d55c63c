"""Copy a small evaluation corpus out of a synthesized one (what gradnap ships).

Takes the first N test sentences spoken by every seen voice, and the same sentences by the
held-out voice, with their TextGrids and transcripts:

    python scripts/make_eval_subset.py --corpus DIR --out src/gradnap/assets/eval --sentences 20
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--sentences", type=int, default=20)
    args = ap.parse_args()
    test = sorted(p.stem for p in (args.corpus / "test-unseen-voice").rglob("*.flac"))
    keep = {uid.split("-")[2] for uid in test[: args.sentences]}
    for split in ("test", "test-unseen-voice"):
        for trans in sorted((args.corpus / split).rglob("*.trans.txt")):
            lines = [
                ln
                for ln in trans.read_text().splitlines()
                if ln.split(" ", 1)[0].split("-")[2] in keep
            ]
            dest = args.out / split / trans.parent.relative_to(args.corpus / split)
            dest.mkdir(parents=True, exist_ok=True)
            for line in lines:
                uid = line.split(" ", 1)[0]
                for ext in (".flac", ".TextGrid"):
                    shutil.copy(trans.parent / f"{uid}{ext}", dest / f"{uid}{ext}")
            (dest / trans.name).write_text("\n".join(lines) + "\n")
    manifest = json.loads((args.corpus / "corpus.json").read_text())
    manifest["subset"] = {
        "of": str(args.corpus),
        "sentences": sorted(keep),
        "splits": ["test", "test-unseen-voice"],
    }
    (args.out / "corpus.json").write_text(json.dumps(manifest, indent=2))
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{args.out}: {len(list(args.out.rglob('*.flac')))} utterances, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
