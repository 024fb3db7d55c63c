"""Profiling a whole corpus: :func:`profiles`.

One pass over the utterances in constant memory (the :class:`Profiler` keeps sums only);
feature extraction in worker processes (``workers``); a partial checkpoint saved
atomically every ``checkpoint_every`` utterances with the list of utterances done (skipped
while saving would take over 5 % of the run's time: with many groups the sums run to
hundreds of MB), so a killed run resumes where it stopped and ends with the same result as
one uninterrupted run; under ``torchrun`` each rank profiles its own shard and the sums are
all-reduced once at the end.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path

import torch
import xarray as xr
from tqdm.auto import tqdm

from gradnap import parallel
from gradnap.data.validate import check_limit, utterance_features
from gradnap.models.registry import registered
from gradnap.options import check_profile_options
from gradnap.outputs import write_bytes
from gradnap.profiling import distributed
from gradnap.profiling.groupings import needs
from gradnap.profiling.method import DEFAULT_VARIANTS
from gradnap.profiling.result import save_profiles
from gradnap.profiling.run import Profiler, as_spec
from gradnap.profiling.token_profile import TokenProfiler, check_token_options, is_token_model

PARTIAL_VERSION = 3  # 2: sums keyed by the variants' Sum.key; 3: top events


class FeatureDataset(torch.utils.data.Dataset):
    """Utterance ``indices[k]`` -> ``(i, features, speaker, alignment, transcript)`` (run in
    DataLoader worker processes; the sanity check reads utterances through it too)."""

    def __init__(self, utterances, indices, feature_config, alignments, root, need_alignment):
        self.utterances, self.indices = utterances, indices
        self.fcfg, self.alignments, self.root = feature_config, alignments, root
        self.need_alignment = need_alignment

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, k):
        from gradnap.corpus.textgrid import find_alignment

        i = self.indices[k]
        utt = self.utterances[i]
        alignment = find_alignment(utt, self.alignments, self.root) if self.need_alignment else None
        return i, utterance_features(utt, self.fcfg), utt.speaker, alignment, utt.text


def _identity(item):
    return item


def _signature(profiler: Profiler, ids: list[str]) -> str:
    """What a partial checkpoint must match to be resumed: settings and utterance list."""
    cfg = {k: v for k, v in profiler.config().items() if k not in ("utterances", "events")}
    text = json.dumps([cfg, ids], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def partial_path(checkpoint: Path, rank: int, world: int) -> Path:
    return (
        checkpoint
        if world == 1
        else checkpoint.with_name(f"{checkpoint.name}.rank{rank}-of-{world}")
    )


def _save_partial(path: Path, profiler: Profiler, done: list[int], signature: str) -> None:
    state = {
        "version": PARTIAL_VERSION,
        "signature": signature,
        "done": list(done),
        "profiler": profiler.state_dict(),
    }
    buffer = io.BytesIO()  # written whole or not at all, also on a full disk
    torch.save(state, buffer)
    write_bytes(path, buffer.getbuffer())


def _load_partial(path: Path, signature: str) -> dict:
    # weights_only: a partial file holds only tensors, numbers, strings, lists and dicts; a
    # crafted pickle that would run code (or build any other object) is refused unrun.
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"{path}: not a readable gradnap partial profile (refused to load: {reason}); "
            "remove it or run without --resume"
        ) from exc
    if not isinstance(state, dict) or state.get("version") != PARTIAL_VERSION:
        raise ValueError(f"{path}: not a gradnap partial profile (version mismatch)")
    if state["signature"] != signature:
        raise ValueError(
            f"{path}: was made with other settings or another corpus; remove it or run "
            "without --resume"
        )
    return state


def corpus_utterances(data, limit: int | None = None) -> tuple[list, Path | None]:
    """The utterances of a corpus folder, :class:`gradnap.Corpus` or list (the first
    ``limit``), and the corpus root (for TextGrids under it) when there is one."""
    from gradnap.data.corpus import Corpus, read_corpus

    if isinstance(data, (str, Path)):
        data = read_corpus(data)
    root = data.root if isinstance(data, Corpus) else None
    return (list(data)[: check_limit(limit)] if limit is not None else list(data)), root


def profiles(
    model,
    data,
    layers=None,
    group_by=("grapheme",),
    device="cpu",
    alignments: str | Path | None = None,
    backend="auto",
    crop_width="support",
    limit: int | None = None,
    batch_events: int | str = "auto",
    include_blank=False,
    neurons=None,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 25,
    resume: bool = False,
    workers: int = 0,
    variants=DEFAULT_VARIANTS,
    mask_scale: str = "window",
    navai_align: str = "gradient",
    out: str | Path | None = None,
    sensitivity: str = "logit",
    top_events: int = 5,
    max_memory: float = 2e9,
) -> xr.DataTree | None:
    """GradNAP, NAvAI and NAP profiles (``variants``) of ``model`` over a corpus.

    ``model`` is a Wav2Letter, a :class:`gradnap.ModelSpec` or a model file (its path and
    a hash of its weights go into the result's configuration). ``data`` is a corpus folder,
    a :class:`gradnap.Corpus` or a list of utterances. Groupings that need an alignment
    (phoneme, word, manner) read a TextGrid per utterance (beside the audio or under
    ``alignments``). ``backend`` picks the gradient backend (auto, fast, hf_ctc, generic,
    reference); ``variants``, ``mask_scale``, ``navai_align``, ``sensitivity`` and
    ``top_events`` are those of :class:`gradnap.Profiler`. ``workers`` processes extract
    the features. The configuration records the corpus folder (``corpus``, absolute), every
    utterance's id (``utterance_ids``, the list the top events' ``top_utterance`` indexes)
    and audio file (``utterance_audio``, relative to ``corpus`` when under it), so that the
    audio of the top events can be found again (:mod:`gradnap.analysis.listen`).

    ``out`` (a file): the result is written there atomically; the partial sums go to
    ``OUT.partial`` every ``checkpoint_every`` utterances (0: never; skipped while saving
    would take over 5 % of the run's time), ``resume=True`` continues from it, and it is
    deleted once the result is written. (``checkpoint`` names another partial file, also
    without ``out``.) Under ``torchrun`` (``WORLD_SIZE`` > 1) each rank profiles its shard
    and the sums are all-reduced; rank 0 writes and returns the result, the other ranks
    return ``None``; a process group this call set up is torn down at the end.

    >>> tree = gradnap.profiles(model, "corpus/", out="p.nc")  # doctest: +SKIP
    """
    check_profile_options(group_by, batch_events, crop_width, device, limit)
    path = model if isinstance(model, (str, Path)) else None
    if path is not None:
        from gradnap.models.checkpoint import load

        model = load(path)  # a registered name too (whisper-tiny.en)
    provenance = model_provenance(model, None if registered(path) else path)
    if registered(path):
        provenance["model_name"] = str(path)
    if checkpoint is None and out is not None and checkpoint_every:
        checkpoint = Path(out).with_name(Path(out).name + ".partial")
    with parallel.process_group(device) as (rank, world):
        if is_token_model(model):  # Whisper: token events (token_profile.py)
            check_token_options(backend, crop_width, include_blank)
            profiler = TokenProfiler(
                model, layers=layers, group_by=group_by, device=device, neurons=neurons,
                variants=variants, mask_scale=mask_scale, navai_align=navai_align,
                sensitivity=sensitivity, max_memory=max_memory,
                max_events=None if batch_events == "auto" else int(batch_events),
            )  # fmt: skip
        else:
            profiler = Profiler(
                as_spec(model),
                layers=layers,
                group_by=group_by,
                backend=backend,
                crop_width=crop_width,
                device=device,
                batch_events=batch_events,
                include_blank=include_blank,
                neurons=neurons,
                variants=variants,
                mask_scale=mask_scale,
                navai_align=navai_align,
                sensitivity=sensitivity,
                top_events=top_events,
                max_memory=max_memory,
            )
        partial = partial_path(Path(checkpoint), rank, world) if checkpoint else None
        extra = _run(
            profiler, data, limit, alignments, partial, checkpoint_every, resume, workers,
            progress, rank, world,
        )  # fmt: skip
        if rank == 0 and not any(h.groups_ for h in profiler.halves_):
            raise ValueError(
                f"no profile: {profiler.n_events_} events and none fell in a group of "
                f"{', '.join(map(str, group_by))} (empty TextGrid tiers?)"
            )
        result = profiler.result({**extra, **provenance}) if rank == 0 else None
        if out is not None and rank == 0:
            save_profiles(result, out)
        parallel.barrier()  # the result is written: the partial files go (each rank its own)
        if partial is not None:
            partial.unlink(missing_ok=True)
    return result


def model_provenance(model, path: str | Path | None = None) -> dict:
    """Where a model came from, for the result's configuration: ``model_path`` (``path``,
    else the file :func:`gradnap.load` read it from, or the saved Hugging Face directory a
    spec was read from, when known) and ``model_sha256`` (of its weights)."""
    net = getattr(model, "model", model)  # a ModelSpec's model
    path = path or getattr(net, "source_path", None)
    path = path or (getattr(model, "description", None) or {}).get("source")
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return {
        "model_path": str(Path(path).resolve()) if path else None,
        "model_sha256": digest.hexdigest(),
    }


def _audio_path(utterance, root: Path | None) -> str | None:
    """An utterance's audio file, relative to the corpus root when under it."""
    audio = getattr(utterance, "audio", None)
    if audio is None:
        return None
    audio = Path(audio).resolve()
    if root is not None and audio.is_relative_to(Path(root).resolve()):
        return audio.relative_to(Path(root).resolve()).as_posix()
    return str(audio)


# the clock of the checkpoint throttling (a test replaces it)
_clock = time.perf_counter


def _run(profiler, data, limit, alignments, partial, checkpoint_every, resume, workers,
         progress, rank, world) -> dict:  # fmt: skip
    """Profile this rank's shard (resuming from ``partial``), all-reduce, and return what
    the configuration records of the corpus."""
    utterances, root = corpus_utterances(data, limit)
    ids = [getattr(u, "id", str(i)) for i, u in enumerate(utterances)]
    mine = distributed.shard([getattr(u, "duration", None) or 1.0 for u in utterances], rank, world)
    signature = _signature(profiler, ids)
    done: list[int] = []
    if partial is not None and resume and partial.exists():
        state = _load_partial(partial, signature)
        profiler.load_state_dict(state["profiler"])
        done = list(state["done"])
    elif partial is not None and partial.exists() and not resume:
        raise FileExistsError(f"{partial}: a partial run exists; pass --resume or remove it")
    finished = set(done)
    todo = [i for i in mine if i not in finished]
    need_alignment = needs(profiler.group_by, "alignment")
    dataset = FeatureDataset(utterances, todo, profiler.front_end, alignments, root, need_alignment)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=workers, collate_fn=_identity
    )
    bar = tqdm(
        loader,
        total=len(todo),
        desc="profiling" if world == 1 else f"profiling (rank {rank}/{world})",
        unit="utt",
        disable=not progress or rank != 0,
    )
    t0, n_events = _clock(), 0
    saved_at, save_cost = t0, 0.0
    for i, x, speaker, alignment, text in bar:
        n_events += profiler.update(x, speaker, alignment, text, index=i)
        done.append(i)
        now = _clock()
        bar.set_postfix(events=n_events, rate=f"{n_events / max(now - t0, 1e-9):.0f}/s")
        due = partial is not None and checkpoint_every and len(done) % checkpoint_every == 0
        if due and now - saved_at >= 19 * save_cost:  # saving stays under 5 % of the time
            _save_partial(partial, profiler, done, signature)
            saved_at = _clock()
            save_cost = saved_at - now
    if world > 1:
        profiler.all_reduce()
    return {
        "corpus": str(Path(root).resolve()) if root else None,
        "utterances_ids_first": ids[:5],
        "utterance_ids": ids,
        "utterance_audio": [_audio_path(u, root) for u in utterances],
        "audio_seconds": sum(getattr(u, "duration", 0.0) for u in utterances),
        "processes": world,
    }
