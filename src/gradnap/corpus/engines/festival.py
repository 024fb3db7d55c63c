"""festival voices (kal, ked diphone; slt HTS): timings from the Segment and Word relations."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import soundfile as sf

from gradnap.corpus.engines import EngineError, Job, Spoken, radio_phones, spoken

SCHEME = """
(define (dump-utt text wavfile segfile wordfile)
  (set! utt1 (eval (list 'Utterance 'Text text)))
  (utt.synth utt1)
  (utt.save.wave utt1 wavfile 'riff)
  (set! fd (fopen segfile "w"))
  (mapcar (lambda (s) (format fd "%s %f\\n" (item.name s) (item.feat s "end")))
          (utt.relation.items utt1 'Segment))
  (fclose fd)
  (set! fd (fopen wordfile "w"))
  (mapcar (lambda (w) (format fd "%s %f %f\\n" (item.name w)
            (item.feat w "R:SylStructure.daughter1.daughter1.segment_start")
            (item.feat w "R:SylStructure.daughtern.daughtern.end")))
          (utt.relation.items utt1 'Word))
  (fclose fd))
"""


def version() -> str:
    exe = shutil.which("festival")
    if exe is None:
        return "missing"
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
    return out.strip().split(":")[-2].strip() if ":" in out else out.strip()


def synthesize(voice: str, jobs: list[Job], workdir: Path) -> list[Spoken]:
    """Speak ``jobs`` with festival voice ``voice`` (e.g. ``kal_diphone``) in one process."""
    exe = shutil.which("festival")
    if exe is None:
        raise EngineError("festival not found: apt-get install festival festlex-cmu")
    lines = [SCHEME, f"(voice_{voice})"]
    for i, job in enumerate(jobs):
        text = job.text.replace('"', "")
        lines.append(f"(Parameter.set 'Duration_Stretch {job.stretch:.4f})")
        lines.append(
            f'(dump-utt "{text}" "{workdir}/{i}.wav" "{workdir}/{i}.seg" "{workdir}/{i}.words")'
        )
    script = workdir / "run.scm"
    script.write_text("\n".join(lines) + "\n")
    done = subprocess.run([exe, "-b", str(script)], capture_output=True, text=True)
    out = []
    for i, job in enumerate(jobs):
        wav = workdir / f"{i}.wav"
        if not wav.exists():
            raise EngineError(f"festival {voice} failed on {job.uid}: {done.stderr[-500:]}")
        audio, sr = sf.read(wav, dtype="float32")
        seg = (workdir / f"{i}.seg").read_text().split("\n")
        ends = [(ln.split()[0], float(ln.split()[1])) for ln in seg if ln.strip()]
        words = _words((workdir / f"{i}.words").read_text())
        out.append(spoken(job.uid, audio, sr, radio_phones(ends), words))
    return out


def _words(text: str):
    words = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        name, start, end = line.rsplit(" ", 2)
        start, end = float(start), float(end)
        if name.startswith("'") and words:  # "cat" + "'s" -> "cat's"
            w, s, e = words[-1]
            words[-1] = (w + name, s, max(e, end))
        elif end > start:
            words.append((name.lower(), start, end))
    return words
