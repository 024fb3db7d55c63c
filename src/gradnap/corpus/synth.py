"""``gradnap synth``: a multi-speaker English corpus with exact phone timings, offline.

Layout: ``OUT/{train,dev,test,test-unseen-voice}/SPEAKER/1/SPEAKER-1-NNNNNN.flac`` with
``SPEAKER-1.trans.txt`` (LibriSpeech) and a ``.TextGrid`` beside each flac, plus
``OUT/corpus.json``. Sentences are split first (dev and test sentences never occur in
train); the held-out person speaks only in ``test-unseen-voice``. Everything random comes
from ``seed``; files are written under temporary names and renamed, so a rerun completes
an interrupted one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from gradnap._version import __version__
from gradnap.atomic import atomic_write, write_text
from gradnap.corpus import sentences as sentence_sources
from gradnap.corpus.engines import EngineError, Job, espeak, festival, flite, mbrola, pico, piper
from gradnap.corpus.phones import PhoneMapError
from gradnap.corpus.textgrid import Alignment, write_textgrid
from gradnap.corpus.voices import HELD_OUT, Voice, available_voices, get_voice

ENGINES = {
    "festival": festival,
    "flite": flite,
    "espeak": espeak,
    "piper": piper,
    "mbrola": mbrola,
    "pico": pico,
}
SPLITS = ("train", "dev", "test", "test-unseen-voice")


def plan(
    voices: list[Voice],
    held_out: str,
    texts: list[str],
    seed: int,
    dev_fraction: float = 0.03,
    test_fraction: float = 0.04,
    stretch: tuple[float, float] = (0.85, 1.2),
    max_test: int = 250,
    max_dev: int = 400,
) -> dict[str, list[tuple[Voice, Job]]]:
    """Who speaks which sentence in which split.

    Train and dev sentences are each spoken by one seen voice (drawn at random); test
    sentences by every seen voice, and by the held-out voice in ``test-unseen-voice``.
    Each utterance gets a random time stretch and pitch offset.
    """
    rng = np.random.default_rng(seed)
    seen = [v for v in voices if v.person != get_voice(held_out).person]
    unseen = get_voice(held_out)
    if not seen:
        raise ValueError("no seen voice left after holding out " + held_out)
    order = rng.permutation(len(texts))
    n_test = min(max_test, max(1, int(round(test_fraction * len(texts)))))
    n_dev = min(max_dev, max(1, int(round(dev_fraction * len(texts)))))
    split_of = {}
    for rank, i in enumerate(order):
        split_of[int(i)] = "test" if rank < n_test else "dev" if rank < n_test + n_dev else "train"
    out: dict[str, list] = {s: [] for s in SPLITS}

    def job(voice, i):
        spk = speaker_id(voice)
        return voice, Job(
            f"{spk}-1-{i:06d}", texts[i], float(rng.uniform(*stretch)), float(rng.uniform(-2, 2))
        )

    for i in range(len(texts)):
        split = split_of[i]
        if split == "test":
            out["test"] += [job(v, i) for v in seen]
            out["test-unseen-voice"].append(job(unseen, i))
        else:
            out[split].append(job(seen[int(rng.integers(len(seen)))], i))
    return out


def speaker_id(voice: Voice) -> str:
    from gradnap.corpus.voices import VOICES

    return str(101 + VOICES.index(voice))


def _run_chunk(out_dir: str, voice: Voice, jobs: list[Job]) -> list[dict]:
    """Worker: speak ``jobs`` and write flac + TextGrid for each; return their metadata."""
    engine = ENGINES[voice.engine]
    done, errors = [], []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            spoken = engine.synthesize(voice.engine_voice, jobs, Path(tmp))
        except (EngineError, PhoneMapError):
            spoken = []
            for j in jobs:  # retry one by one to isolate the failure
                try:
                    spoken += engine.synthesize(voice.engine_voice, [j], Path(tmp))
                except (EngineError, PhoneMapError) as exc:
                    errors.append({"uid": j.uid, "error": str(exc)})
    texts = {j.uid: j for j in jobs}
    for s in spoken:
        folder = Path(out_dir) / s.uid.split("-")[0] / "1"
        folder.mkdir(parents=True, exist_ok=True)
        duration = len(s.audio) / 16000
        try:
            alignment = Alignment(s.words, s.phones, duration)
            write_textgrid(folder / f"{s.uid}.TextGrid", alignment)
        except Exception as exc:  # one bad utterance must not stop the corpus
            errors.append({"uid": s.uid, "error": f"TextGrid: {exc}"})
            continue
        with atomic_write(folder / f"{s.uid}.flac") as part:
            sf.write(part, s.audio, 16000, format="FLAC")
        done.append({"uid": s.uid, "text": texts[s.uid].text, "duration": duration})
    return done + errors


def synthesize_corpus(
    out: str | Path,
    voices: list[str] | None = None,
    held_out: str = HELD_OUT,
    n_sentences: int | None = None,
    seed: int = 0,
    jobs: int = 1,
    chunk: int = 40,
    progress: bool = True,
    non_free: bool = False,
) -> dict:
    """Build the corpus in ``out``; return the manifest (also written to corpus.json).

    ``non_free=True`` opts in to the MBROLA and pico voices (Debian contrib/non-free,
    licences that forbid use in a sold product); without it they are refused."""
    out = Path(out)
    chosen = [get_voice(v) for v in voices] if voices else available_voices(non_free)
    refused = [v.name for v in chosen if v.non_free and not non_free]
    if refused:
        raise ValueError(
            f"voice(s) {', '.join(refused)} have non-free licences (no use in a sold "
            "product): pass --non-free to opt in"
        )
    _check_settings(
        out,
        {
            "seed": seed,
            "held_out_voice": held_out,
            "voices": sorted({v.name for v in chosen} | {held_out}),
            "sentences": n_sentences,
        },
    )
    missing = [f"{v.name}: {v.unavailable()}" for v in chosen if v.unavailable()]
    if missing:
        raise EngineError("voices not available:\n  " + "\n  ".join(missing))
    if held_out not in [v.name for v in chosen]:
        chosen.append(get_voice(held_out))
        if chosen[-1].unavailable():
            raise EngineError(f"held-out voice {held_out}: {chosen[-1].unavailable()}")
    sources = sentence_sources.sentences()
    texts = [t for src in sources.values() for t in src]
    rng = np.random.default_rng(seed)
    texts = [texts[i] for i in rng.permutation(len(texts))]
    if n_sentences:
        texts = texts[:n_sentences]
    the_plan = plan(chosen, held_out, texts, seed)
    tasks = []
    for split, pairs in the_plan.items():
        by_voice = defaultdict(list)
        for voice, job in pairs:
            spk = job.uid.split("-")[0]
            if not (out / split / spk / "1" / f"{job.uid}.flac").exists():
                by_voice[voice.name].append(job)
        for name, js in by_voice.items():
            for k in range(0, len(js), chunk):
                tasks.append((split, get_voice(name), js[k : k + chunk]))
    total = sum(len(t[2]) for t in tasks)
    errors = []
    bar = tqdm(total=total, desc="synthesizing", unit="utt", disable=not progress)
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {
            pool.submit(_run_chunk, str(out / split), voice, js): len(js)
            for split, voice, js in tasks
        }
        for fut in as_completed(futures):
            errors += [r for r in fut.result() if "error" in r]
            bar.update(futures[fut])
    bar.close()
    return write_manifest(out, the_plan, chosen, held_out, seed, sources, errors)


SETTINGS = ".gradnap-synth.json"


def _check_settings(out: Path, settings: dict) -> None:
    """A rerun into ``out`` completes the corpus only with the settings that began it
    (another seed draws other sentences for the same file names): refuse others. The
    settings are written before any audio; a corpus from before this file existed is
    compared with its corpus.json."""
    stored_path, manifest = out / SETTINGS, out / "corpus.json"
    if stored_path.is_file():
        stored = json.loads(stored_path.read_text())
    elif manifest.is_file():
        m = json.loads(manifest.read_text())
        stored = {
            "seed": m.get("seed"),
            "held_out_voice": m.get("held_out_voice"),
            "voices": sorted(v["name"] for v in m.get("voices", [])),
        }
    else:
        out.mkdir(parents=True, exist_ok=True)
        part = out / f"{SETTINGS}.part"
        part.write_text(json.dumps(settings, indent=2))
        os.replace(part, stored_path)
        return
    differ = [
        f"{k} {settings[k]!r} (the corpus has {stored[k]!r})"
        for k in stored
        if k in settings and settings[k] != stored[k]
    ]
    if differ:
        raise ValueError(
            f"{out}: holds a corpus made with other settings: {'; '.join(differ)}. A rerun "
            "completes a corpus only with its own settings: use them, or another --out"
        )


def write_manifest(out: Path, the_plan, voices, held_out, seed, sources, errors) -> dict:
    """Write the trans.txt files and corpus.json from what is on disk."""
    counts = {}
    for split, pairs in the_plan.items():
        chapters = defaultdict(list)
        seconds = defaultdict(float)
        for voice, job in pairs:
            spk = job.uid.split("-")[0]
            flac = out / split / spk / "1" / f"{job.uid}.flac"
            if flac.exists():
                chapters[spk].append(f"{job.uid} {job.text.upper()}")
                seconds[voice.name] += sf.info(str(flac)).duration
        for spk, lines in chapters.items():
            trans = out / split / spk / "1" / f"{spk}-1.trans.txt"
            write_text(trans, "\n".join(sorted(lines)) + "\n")
        counts[split] = {
            "utterances": sum(len(v) for v in chapters.values()),
            "hours": sum(seconds.values()) / 3600,
            "seconds_by_voice": dict(sorted(seconds.items())),
        }
    manifest = {
        "gradnap_version": __version__,
        "seed": seed,
        "held_out_voice": held_out,
        "voices": [
            {**asdict(v), "speaker": speaker_id(v), "engine_version": ENGINES[v.engine].version()}
            for v in voices
        ],
        "sentence_sources": {k: len(v) for k, v in sources.items()},
        "splits": counts,
        "failed": errors,
    }
    write_text(out / "corpus.json", json.dumps(manifest, indent=2))
    return manifest
