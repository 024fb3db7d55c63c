"""GradNAPs across training: every checkpoint of a run profiled on the same utterances.

:func:`trajectory` runs one :class:`Profiler` per checkpoint (in order of training step)
over the same utterances, with the same settings, and stacks the results along a ``step``
dimension: one node per layer as in :func:`gradnap.profiles`, each variable with ``step``
first, and the coordinates ``step``, ``epoch``, ``dev_cer`` and ``checkpoint`` on it.

Events are by default each checkpoint's own predictions (``events="own"``: a checkpoint
early in training predicts mostly blanks, so its groups have few events); with
``events="final"`` every checkpoint is profiled on the final checkpoint's events, classes
and grapheme labels (as the sanity check keeps a trained model's events), so each step's
profiles average over the same frames. A group missing at a step has NaN profiles and a
count of 0 there.

The run streams: one checkpoint's sums at a time; each finished checkpoint's profiles go
to ``OUT.steps/`` (atomically), so a killed run resumed with ``resume=True`` redoes at most
the checkpoint it was in and ends with the same result. (The folder holds each step's
float64 sums, like a partial profile: as large as the profiles.) Under ``torchrun`` each rank
profiles its shard of the utterances and the sums are all-reduced per checkpoint.
"""

from __future__ import annotations

import glob
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from tqdm.auto import tqdm

from gradnap.models.checkpoint import atomic_torch_save
from gradnap.profiling import distributed
from gradnap.profiling.driver import corpus_utterances
from gradnap.profiling.groupings import needs
from gradnap.profiling.result import save_profiles
from gradnap.profiling.run import Profiler, as_spec

EVENTS = ("own", "final")


def find_checkpoints(source) -> list[Path]:
    """Checkpoint files from a folder (its ``*.pt``), a glob pattern, or a list of paths."""
    if isinstance(source, (list, tuple)):
        paths = [Path(p) for p in source]
    elif Path(source).is_dir():
        paths = sorted(Path(source).glob("*.pt"))
    else:
        paths = [Path(p) for p in sorted(glob.glob(str(source)))]
    if not paths:
        raise FileNotFoundError(f"{source}: no checkpoint files (*.pt)")
    return paths


def checkpoint_info(path: str | Path) -> dict:
    """``step``, ``epoch`` and ``dev_cer`` of a checkpoint: what ``train --keep-checkpoints``
    stored with it, else its training state (``dev_cer`` of the last finished epoch, or
    NaN)."""
    from gradnap.models.checkpoint import read_checkpoint

    payload = read_checkpoint(path)
    if "trajectory" in payload:
        info = dict(payload["trajectory"])
    elif "train_state" in payload:
        state = payload["train_state"]["state"]
        history = state.get("history") or []
        info = {
            "step": state["step"],
            "epoch": state["epoch"],
            "dev_cer": history[-1].get("dev_cer", float("nan")) if history else float("nan"),
        }
    else:
        raise ValueError(f"{path}: says nothing about its training step (not a training run?)")
    return {
        "step": int(info["step"]),
        "epoch": float(info.get("epoch", float("nan"))),
        "dev_cer": float(info.get("dev_cer", float("nan"))),
    }


def _items(utterances, indices, fcfg, alignments, root, need_alignment):
    from gradnap.audio.features import features
    from gradnap.corpus.textgrid import find_alignment

    for i in indices:
        utt = utterances[i]
        alignment = find_alignment(utt, alignments, root) if need_alignment else None
        wav, sr = utt.load()
        yield i, features(wav, sr, fcfg), utt.speaker, alignment, utt.text


def trajectory(
    checkpoints,
    data,
    out: str | Path,
    layers=None,
    group_by=("grapheme",),
    events: str = "own",
    alignments: str | Path | None = None,
    limit: int | None = None,
    device: str = "cpu",
    backend: str = "auto",
    crop_width="support",
    batch_events: int | str = "auto",
    include_blank: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> xr.DataTree | None:
    """Profile every checkpoint (a folder, glob or list; see :func:`find_checkpoints`) on
    the same utterances of ``data`` and write the trajectory to ``out`` (NetCDF).

    ``events``: "own" (each checkpoint's predictions) or "final" (the last checkpoint's
    events and classes for all). The other parameters are those of
    :func:`gradnap.profiles`. Returns the trajectory (rank 0; other ranks ``None``): per
    layer the result's variables over (step, group, ...), root ``count`` over (step,
    group), ``n_events`` over step.

    >>> traj = trajectory("run.steps/", "corpus/", "traj.nc", layers=["input"])  # doctest: +SKIP
    """
    from gradnap.models.checkpoint import load

    if events not in EVENTS:
        raise ValueError(f"events must be one of {EVENTS}, not {events!r}")
    out = Path(out)
    paths = find_checkpoints(checkpoints)
    infos = [checkpoint_info(p) for p in paths]
    order = sorted(range(len(paths)), key=lambda k: (infos[k]["step"], str(paths[k])))
    paths, infos = [paths[k] for k in order], [infos[k] for k in order]
    is_dist = distributed.init_from_env(device)
    rank, world = distributed.rank_and_world()
    utterances, root = corpus_utterances(data, limit)
    ids = [getattr(u, "id", str(i)) for i, u in enumerate(utterances)]
    mine = distributed.shard([getattr(u, "duration", None) or 1.0 for u in utterances], rank, world)
    settings = {
        "checkpoints": [str(p.resolve()) for p in paths],
        "layers": layers,
        "group_by": list(group_by),
        "events": events,
        "alignments": str(alignments) if alignments else None,
        "backend": backend,
        "crop_width": crop_width,
        "include_blank": include_blank,
        "utterances": ids,
    }
    signature = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    work = out.with_name(f"{out.name}.steps")
    stamp = work / "signature.txt"
    if work.exists() and not resume:
        raise FileExistsError(f"{work}: a partial trajectory exists; pass --resume or remove it")
    if rank == 0:
        work.mkdir(parents=True, exist_ok=True)
        if stamp.exists() and stamp.read_text() != signature.hexdigest():
            raise ValueError(f"{work}: was made with other settings; remove it")
        stamp.write_text(signature.hexdigest())
    need_alignment = needs(group_by, "alignment")
    final = None
    if events == "final":
        final = as_spec(load(paths[-1], device))

    def make_profiler(path):
        spec = as_spec(load(path, device))
        return Profiler(
            spec, layers, group_by, backend, crop_width, device, batch_events, include_blank
        )

    step_files = []
    bar = tqdm(total=len(paths), desc="checkpoints", unit="ckpt", disable=not progress or rank)
    for k, (path, info) in enumerate(zip(paths, infos)):
        step_file = work / f"{k:03d}-step-{info['step']}.pt"
        step_files.append(step_file)
        if step_file.exists():
            bar.update()
            continue
        prof = make_profiler(path)
        fcfg = prof.spec.feature_config
        for i, x, speaker, alignment, text in _items(
            utterances, mine, fcfg, alignments, root, need_alignment
        ):
            classes = None
            if final is not None:
                with torch.no_grad():
                    logits = final.model(x[None].to(device, torch.float32))[0]
                classes = logits.argmax(0)
            prof.update(x, speaker, alignment, text, classes=classes, index=i)
        if is_dist:
            distributed.all_reduce_profiler(prof)
        if rank == 0:
            extra = {
                "corpus": str(root) if root else None,
                "checkpoint": str(path),
                **info,
                "events_from": "own predictions" if final is None else str(paths[-1]),
            }
            # the sums, not the profiles: a NetCDF round trip per step costs more
            atomic_torch_save({"profiler": prof.state_dict(), "extra": extra}, step_file)
        if is_dist:
            torch.distributed.barrier()
        bar.update()
    bar.close()
    if rank != 0:
        return None
    steps = []
    for path, step_file in zip(paths, step_files):
        state = torch.load(step_file, map_location="cpu", weights_only=True)  # data only
        prof = make_profiler(path).load_state_dict(state["profiler"])
        # a checkpoint that predicts only blanks (early in training) has no events
        steps.append(prof.result(state["extra"]) if prof.acc_.n_events_ else None)
    if all(t is None for t in steps):
        raise ValueError(
            "no checkpoint predicted any event on these utterances (only blanks); "
            "profile more utterances or use events='final'"
        )
    steps = _fill_empty(steps)
    tree = stack_steps(steps, paths, infos, events)
    save_profiles(tree, out)
    shutil.rmtree(work, ignore_errors=True)
    return tree


def _fill_empty(steps: list[xr.DataTree | None]) -> list[xr.DataTree]:
    """Steps without events (``None``) become results with no groups and 0 events, shaped
    as a step with events (stacking then gives NaN profiles, count 0)."""
    like = next(t for t in reversed(steps) if t is not None)
    empty = like.isel(group=slice(0, 0))
    empty["n_events"] = xr.zeros_like(like["n_events"])
    return [empty if t is None else t for t in steps]


def stack_steps(steps: list[xr.DataTree], paths, infos, events: str) -> xr.DataTree:
    """Stack one result per checkpoint along ``step`` (groups: the union, sorted; a group
    missing at a step has NaN profiles and count 0)."""
    groups = sorted({str(g) for t in steps for g in t["group"].values})
    step_coords = {
        "step": ("step", np.array([i["step"] for i in infos]), {"long_name": "training step"}),
        "epoch": ("step", np.array([i["epoch"] for i in infos], dtype=float)),
        "dev_cer": (
            "step",
            np.array([i["dev_cer"] for i in infos], dtype=float),
            {"long_name": "character error rate on the dev set (greedy)", "units": "1"},
        ),
        "checkpoint": ("step", np.array([str(p) for p in paths])),
    }

    def stacked(datasets):
        parts = [ds.reindex(group=groups, fill_value=np.nan) for ds in datasets]
        for part in parts:
            for name in ("count",):
                if name in part:
                    part[name] = part[name].fillna(0).astype(np.int64)
        return xr.concat(parts, dim="step", join="outer", combine_attrs="override")

    roots = [t.to_dataset(inherit=False) for t in steps]
    root = stacked(roots).assign_coords(step_coords)
    config = json.loads(steps[-1].attrs["config"])
    config.pop("checkpoint", None)
    config["trajectory"] = {
        "events": events,
        "events_from": config.pop("events_from", None),
        "steps": [i["step"] for i in infos],
        "checkpoints": [str(p) for p in paths],
        "per_step_events": [int(t["n_events"]) for t in steps],
    }
    root.attrs = {"config": json.dumps(config, default=str), "title": "GradNAP trajectory"}
    nodes = {"/": root}
    for layer in steps[-1].children:
        ds = stacked([t[layer].to_dataset() for t in steps])
        nodes[f"/{layer}"] = ds.assign_coords(step=step_coords["step"])
    return xr.DataTree.from_dict(nodes)
