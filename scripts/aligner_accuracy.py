"""How far the pocketsphinx aligner's phone boundaries fall from the synthesizer's own.

For each voice (speaker folder) of a synthesized corpus split, aligns N utterances and
compares phone start times where the two label sequences agree (difflib matching of the
non-silence phones). Prints a table per voice and a JSON line.

    python scripts/aligner_accuracy.py --corpus DIR/test --per-voice 40
"""

from __future__ import annotations

import argparse
import difflib
import json
from collections import defaultdict

import numpy as np

from gradnap.corpus.align import Aligner, AlignError
from gradnap.corpus.textgrid import find_alignment
from gradnap.data import read_corpus


def boundary_errors(reference, aligned):
    ref = [p for p in reference.phones if p[0] != "sil"]
    got = [p for p in aligned.phones if p[0] != "sil"]
    matcher = difflib.SequenceMatcher(a=[p[0] for p in ref], b=[p[0] for p in got], autojunk=False)
    errors = []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            errors.append(abs(ref[block.a + k][1] - got[block.b + k][1]))
    return errors, len(errors) / max(len(ref), 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--per-voice", type=int, default=40)
    args = ap.parse_args()
    corpus = read_corpus(args.corpus)
    by_speaker = defaultdict(list)
    for utt in corpus:
        if len(by_speaker[utt.speaker]) < args.per_voice:
            by_speaker[utt.speaker].append(utt)
    aligner = Aligner()
    rows = {}
    for speaker, utts in sorted(by_speaker.items()):
        errors, agreement, failed = [], [], 0
        for utt in utts:
            wav, sr = utt.load()
            try:
                aligned = aligner.align(wav, sr, utt.text)
            except AlignError:
                failed += 1
                continue
            e, a = boundary_errors(find_alignment(utt), aligned)
            errors += e
            agreement.append(a)
        ms = 1000 * np.asarray(errors)
        rows[speaker] = {
            "utterances": len(utts),
            "failed": failed,
            "boundaries": len(ms),
            "median_ms": float(np.median(ms)),
            "mean_ms": float(ms.mean()),
            "p90_ms": float(np.percentile(ms, 90)),
            "within_20ms": float((ms <= 20).mean()),
            "label_agreement": float(np.mean(agreement)),
        }
        r = rows[speaker]
        print(
            f"speaker {speaker}: {r['boundaries']} boundaries, median {r['median_ms']:.1f} ms,"
            f" mean {r['mean_ms']:.1f}, p90 {r['p90_ms']:.1f}, within 20 ms "
            f"{100 * r['within_20ms']:.0f} %, labels agree {100 * r['label_agreement']:.0f} %,"
            f" failed {failed}",
            flush=True,
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
