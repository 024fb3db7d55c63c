"""Time of ``gradnap report`` on a result with about 66 groups (issue 16: under 60 s on
the idle 2-core machine).

The result: the bundled model profiled on the bundled test corpus (``--utterances`` of
it, every layer), grouped by grapheme and phoneme (28 graphemes + 39 phonemes and
silence); made once and kept in ``--work``. Then ``gradnap report`` runs on it in a fresh
process, as a user types it (default workers: one per core), ``--rounds`` times; each
round writes a new folder.

    python benchmarks/bench_report.py [--utterances 100] [--rounds 2]

The last line is one JSON object: groups, layers, seconds per round, the median.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--utterances", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", default="build/bench-report")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    result = work / f"profiles-{args.utterances}.nc"
    gradnap = [sys.executable, "-m", "gradnap"]
    if not result.exists():
        from gradnap.models.checkpoint import DEFAULT_CORPUS

        subprocess.run(
            gradnap + ["profile", "--corpus", str(DEFAULT_CORPUS / "test"), "--limit",
                       str(args.utterances), "--group-by", "grapheme,phoneme", "--out",
                       str(result)],
            check=True,
        )  # fmt: skip
    import xarray as xr

    tree = xr.open_datatree(result)
    groups, layers = tree.sizes["group"], len(tree.children)
    tree.close()
    seconds = []
    for k in range(args.rounds):
        out = work / f"report-{k}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run(gradnap + ["report", str(result), "--out", str(out)], check=True)
        seconds.append(time.perf_counter() - t0)
        print(f"round {k + 1}: {seconds[-1]:.1f} s, {groups} groups, {layers} layers", flush=True)
    print(
        json.dumps(
            {
                "groups": groups,
                "layers": layers,
                "utterances": args.utterances,
                "seconds": [round(s, 1) for s in seconds],
                "median_seconds": round(statistics.median(seconds), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
