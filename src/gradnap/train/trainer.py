"""CTC training of Wav2Letter with Adam, length batching, dev CER and exact resume."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from gradnap.audio.features import FeatureConfig
from gradnap.data.alphabet import Alphabet
from gradnap.data.corpus import Corpus
from gradnap.decode.evaluate import evaluate
from gradnap.models.checkpoint import (
    CheckpointError,
    model_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from gradnap.models.wav2letter import Wav2Letter, Wav2LetterConfig
from gradnap.train.augment import SpecAugment
from gradnap.train.batching import FeatureCache, collate, length_batches


@dataclass
class TrainConfig:
    """Training settings (stored in the checkpoint)."""

    preset: str = "mid"
    epochs: int = 10
    lr: float = 3e-4
    batch_seconds: float = 60.0
    max_batch: int = 64
    grad_clip: float = 1.0
    dropout: float = 0.0
    seed: int = 0
    checkpoint_every: int = 200
    max_steps: int | None = None
    spec_augment: bool = False
    lr_schedule: str = "constant"  # or "cosine": decays to 0 over all epochs
    amp: bool = False  # mixed precision: bfloat16 autocast on CPU, float16 + scaling on CUDA
    keep_checkpoints: int = 0  # models kept at steps spaced in log(step) (gradnap.train.keep)


@dataclass
class TrainState:
    """Where training stands: the next batch to run and what happened so far."""

    epoch: int = 0
    batch: int = 0
    step: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    history: list[dict] = field(default_factory=list)


def train(
    train_set: Corpus,
    dev_set: Corpus | None,
    out: str | Path,
    config: TrainConfig | None = None,
    resume: bool = False,
    feature_config: FeatureConfig | None = None,
    alphabet: Alphabet | None = None,
    progress: bool = True,
    log=print,
    device: str = "cpu",
    given: Collection[str] | None = None,
) -> Wav2Letter:
    """Train a Wav2Letter on ``train_set``; checkpoints go to ``out`` (atomically).

    With ``resume=True`` the checkpoint at ``out`` is continued exactly where it stopped
    (same batches, same optimizer and random state), so an interrupted and resumed run
    ends with the same weights as an uninterrupted one. ``device`` is ``cpu`` or
    ``cuda``. Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in
    DistributedDataParallel and every batch is split across the ranks; rank 0 writes the
    checkpoints and evaluates. Returns the model.

    When resuming, the settings are the checkpoint's: ``config`` may change ``epochs``,
    ``max_steps`` and ``checkpoint_every``; any other field named in ``given`` (default:
    the fields where ``config`` differs from :class:`TrainConfig`'s defaults) must equal
    the checkpoint's, else :class:`CheckpointError`.
    """
    from gradnap import parallel

    parallel.init_from_env(device)
    rank, world = parallel.rank_and_world()
    is_dist = world > 1
    if is_dist and str(device).startswith("cuda"):
        device = f"cuda:{torch.cuda.current_device()}"
    if rank != 0:
        progress, log = False, (lambda *a, **k: None)
    out = Path(out)
    cfg = config or TrainConfig()
    if resume:
        payload = read_checkpoint(out)
        if "train_state" not in payload:
            raise CheckpointError(f"{out}: has no training state to resume from")
        ts = payload["train_state"]
        cfg = resumed_config(ts["config"], cfg, given, out)
        model = model_from_checkpoint(payload, out)
        alphabet, fcfg = model.alphabet, model.feature_config
        state = TrainState(**ts["state"])
    else:
        if out.exists():  # every rank, so none waits for a rank that stopped
            raise FileExistsError(f"{out}: exists; pass --resume to continue it or remove it")
        torch.manual_seed(cfg.seed)
        alphabet = alphabet or Alphabet()
        fcfg = feature_config or FeatureConfig()
        model = Wav2Letter(
            Wav2LetterConfig.from_preset(
                cfg.preset, n_mels=fcfg.n_mels, n_classes=len(alphabet), dropout=cfg.dropout
            )
        )
        state = TrainState()
    model.to(device)
    net = model
    if is_dist:
        net = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if resume:
        optimizer.load_state_dict(ts["optimizer"])
        torch.set_rng_state(ts["torch_rng"])
    device_type = torch.device(device).type
    amp_dtype = torch.float16 if device_type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device_type, enabled=cfg.amp and device_type == "cuda")

    def checkpoint() -> None:
        if rank != 0:
            return
        train_state = {
            "config": asdict(cfg),
            "state": asdict(state),
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        save_checkpoint(out, model, alphabet, fcfg, train_state=train_state)

    data = FeatureCache(list(train_set), fcfg)
    lengths = [data.frames(i) for i in range(len(data))]
    max_frames = int(cfg.batch_seconds / fcfg.hop_seconds)
    ctc = torch.nn.CTCLoss(blank=alphabet.blank, zero_infinity=True)
    model.train()
    keep = _Keeper(cfg, out, lengths, max_frames, alphabet, fcfg, dev_set, rank, progress)
    while state.epoch < cfg.epochs:
        plan = length_batches(lengths, max_frames, cfg.seed, state.epoch, cfg.max_batch)
        bar = tqdm(
            total=len(plan),
            initial=state.batch,
            desc=f"epoch {state.epoch + 1}",
            unit="batch",
            disable=not progress,
            dynamic_ncols=True,
        )
        while state.batch < len(plan):
            if cfg.max_steps is not None and state.step >= cfg.max_steps:
                bar.close()
                checkpoint()
                log(f"stopped after {state.step} steps (max_steps); resume with --resume")
                return model.cpu().eval()
            t0 = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(cfg, state.step, cfg.epochs * len(plan))
            idx = plan[state.batch]
            if world > 1:  # this rank's part of the batch
                idx = idx[rank::world] or idx[:1]
            x, xlen, y, ylen = collate(
                [data[i] for i in idx], [train_set[i].text for i in idx], alphabet
            )
            if cfg.spec_augment:
                x = SpecAugment()(x, xlen)
            with torch.autocast(device_type, dtype=amp_dtype, enabled=cfg.amp):
                logits = net(x.to(device))
            logp = torch.log_softmax(logits.float(), dim=1).permute(2, 0, 1)  # (T, B, K)
            loss = ctc(logp, y.to(device), model.output_lengths(xlen).to(device), ylen.to(device))
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            if cfg.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            state.batch += 1
            state.step += 1
            state.loss_sum += loss.item()
            state.loss_count += 1
            audio_s = float(xlen.sum()) * fcfg.hop_seconds
            bar.set_postfix(
                loss=f"{loss.item():.3f}", audio=f"{audio_s / (time.perf_counter() - t0):.0f}s/s"
            )
            bar.update()
            keep.maybe(model, state, len(plan))
            if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
                checkpoint()
        bar.close()
        record = {
            "epoch": state.epoch + 1,
            "step": state.step,
            "train_loss": state.loss_sum / max(state.loss_count, 1),
        }
        if dev_set is not None and len(dev_set) and rank == 0:
            record["dev_cer"] = _dev_cer(model, dev_set, alphabet, fcfg, progress)
        state.history.append(record)
        log(json.dumps(record))
        state.epoch += 1
        state.batch, state.loss_sum, state.loss_count = 0, 0.0, 0
        checkpoint()
    keep.finish(model, state)
    if is_dist:
        torch.distributed.barrier()
    return model.cpu().eval()


RESUMABLE = ("epochs", "max_steps", "checkpoint_every", "keep_checkpoints")  # may change on resume


def resumed_config(
    stored: dict, config: TrainConfig, given: Collection[str] | None = None, where=""
) -> TrainConfig:
    """The checkpoint's settings ``stored`` with ``config``'s :data:`RESUMABLE` fields;
    a field in ``given`` (default: where ``config`` differs from the defaults) that differs
    from ``stored`` is refused."""
    asked, defaults = asdict(config), asdict(TrainConfig())
    if given is None:
        given = [k for k, v in asked.items() if v != defaults[k]]
    changed = [
        f"--{k.replace('_', '-')} {asked[k]} (the checkpoint has {stored.get(k)})"
        for k in given
        if k in asked and k not in RESUMABLE and asked[k] != stored.get(k)
    ]
    if changed:
        raise CheckpointError(
            f"{where}: training settings cannot change on --resume: {', '.join(changed)}; "
            "only --epochs, --max-steps and --checkpoint-every can (or train into a new --out)"
        )
    return TrainConfig(**{**defaults, **stored, **{k: asked[k] for k in RESUMABLE}})


def _dev_cer(model, dev_set, alphabet, fcfg, progress) -> float:
    copy = Wav2Letter(model.config)
    copy.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    ev = evaluate(copy, list(dev_set), alphabet, fcfg, beam_width=None, progress=progress)
    return ev.scores()["greedy"]["cer"]


class _Keeper:
    """Keeps ``cfg.keep_checkpoints`` models at steps spaced in log(step) over the planned
    run (``max_steps``, else the epochs' batches), each with its dev CER."""

    def __init__(self, cfg, out, lengths, max_frames, alphabet, fcfg, dev_set, rank, progress):
        from gradnap.train.keep import kept_steps

        total = cfg.epochs * len(length_batches(lengths, max_frames, cfg.seed, 0, cfg.max_batch))
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        self.steps = set(kept_steps(total, cfg.keep_checkpoints)) if rank == 0 else set()
        self.out, self.alphabet, self.fcfg = out, alphabet, fcfg
        self.dev_set, self.progress = dev_set, progress

    def maybe(self, model, state, batches: int) -> None:
        from gradnap.train.keep import save_kept

        if state.step not in self.steps:
            return
        cer = float("nan")
        if self.dev_set is not None and len(self.dev_set):
            cer = _dev_cer(model, self.dev_set, self.alphabet, self.fcfg, False)
        epoch = state.epoch + state.batch / max(batches, 1)
        save_kept(self.out, model, self.alphabet, self.fcfg, state.step, epoch, cer)

    def finish(self, model, state) -> None:
        """The last step is always kept (epochs can differ by a batch from the plan); the
        latest other kept model makes way for it when all N are there."""
        from gradnap.train.keep import keep_dir, keep_path

        if not self.steps or keep_path(self.out, state.step).exists():
            return
        kept = sorted(keep_dir(self.out).glob("step-*.pt"))
        if len(kept) >= len(self.steps):
            kept[-1].unlink()
        self.steps.add(state.step)
        self.maybe(model, state, 1)


def _learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(step / max(total_steps, 1), 1.0)))
    raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r}: use 'constant' or 'cosine'")
