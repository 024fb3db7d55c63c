"""Memory of profiling runs: flat over many utterances, bounded on one long file.

Two runs of the bundled model over the bundled corpus, every layer, the fast path, one
thread, each in a fresh process:

- ``utterances``: ``--utterances`` (300) utterances (the corpus repeated), groupings
  grapheme, speaker and target; the resident set size (RSS) after every utterance. It
  passes when the RSS at the end stays within 1.5x of the RSS after 20 utterances.
- ``long``: one file of ``--minutes`` (20) minutes, the corpus's utterances concatenated
  (with their transcripts), grouping target (the CTC Viterbi over ~60,000 frames and
  ~36,000 states); the peak RSS. It passes under 6 GB.

    python benchmarks/bench_memory.py [--utterances 300] [--minutes 20] [--only utterances]

The last line of the output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup():
    import torch

    torch.set_num_threads(1)
    import gradnap
    from gradnap.data import read_corpus
    from gradnap.models.checkpoint import DEFAULT_CORPUS
    from gradnap.profiling import ModelSpec

    return ModelSpec.from_wav2letter(gradnap.load()), read_corpus(DEFAULT_CORPUS)


def run_utterances(n: int) -> dict:
    from gradnap.data.validate import utterance_features
    from gradnap.profiling import Profiler

    spec, corpus = setup()
    prof = Profiler(spec, group_by=["grapheme", "speaker", "target"])
    rss, t0 = [], time.perf_counter()
    for k in range(n):
        utt = corpus[k % len(corpus)]
        x = utterance_features(utt, spec.feature_config)
        prof.update(x, utt.speaker, None, utt.text, index=k)
        rss.append(rss_mb())
        if (k + 1) % 20 == 0:
            print(f"  {k + 1} utterances: RSS {rss[-1]:.0f} MB", flush=True)
    at20 = rss[min(19, n - 1)]
    return {
        "utterances": n,
        "rss_mb_after_1": round(rss[0]),
        "rss_mb_after_20": round(at20),
        "rss_mb_end": round(rss[-1]),
        "rss_mb_max": round(max(rss)),
        "ratio_end_to_20": round(rss[-1] / at20, 3),
        "seconds": round(time.perf_counter() - t0, 1),
        "passed": rss[-1] <= 1.5 * at20,
    }


def run_long(minutes: float) -> dict:
    import numpy as np

    from gradnap.audio.features import features
    from gradnap.profiling import Profiler

    spec, corpus = setup()
    sr = spec.feature_config.sample_rate
    parts, texts, total, k = [], [], 0, 0
    while total < minutes * 60 * sr:
        utt = corpus[k % len(corpus)]
        wav, rate = utt.load()
        assert rate == sr
        parts.append(wav)
        texts.append(utt.text)
        total += len(wav)
        k += 1
    wav = np.concatenate(parts)[: int(minutes * 60 * sr)]
    text = " ".join(texts)
    del parts
    t0 = time.perf_counter()
    x = features(wav, sr, spec.feature_config)
    del wav
    prof = Profiler(spec, group_by=["target"])
    n_events = prof.update(x, "long", None, text)
    return {
        "minutes": minutes,
        "utterances_concatenated": k,
        "feature_frames": int(x.shape[1]),
        "transcript_characters": len(text),
        "events": n_events,
        "peak_rss_mb": round(peak_mb()),
        "seconds": round(time.perf_counter() - t0, 1),
        "passed": peak_mb() < 6 * 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utterances", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--only", choices=["utterances", "long"])
    parser.add_argument("--child", choices=["utterances", "long"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        out = (
            run_utterances(args.utterances)
            if args.child == "utterances"
            else run_long(args.minutes)
        )
        print(json.dumps(out))
        return
    results = {}
    for part in [args.only] if args.only else ["utterances", "long"]:
        print(f"== {part}", flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, __file__, "--child", part]
        cmd += ["--utterances", str(args.utterances), "--minutes", str(args.minutes)]
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
        lines = proc.stdout.strip().splitlines()
        print("\n".join(lines[:-1]))
        results[part] = json.loads(lines[-1]) if proc.returncode == 0 else {"failed": True}
        print(json.dumps(results[part], indent=1))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
