"""Throughput of whole profiling runs: 1 and 2 processes on the CPU (one thread each,
torch.distributed with gloo on localhost), and one GPU when there is one.

The ``paper`` preset with random weights (nearly every output frame is an event) profiles
synthetic utterances with LibriSpeech-like lengths (log-normal, median 13 s, 2..30 s)
through the fast path: features in, sums all-reduced out, every layer, grapheme groups.
Prints utterances/s, audio seconds/s and events/s per setting, the FLOP estimate per
event (direct transposed convolutions down each event's receptive-field cone), the
direct-equivalent FLOP/s and its fraction of the device's peak (a dense float32 GEMM
measured in the same run; on a known GPU also the nominal peak; the fast path does fewer
FLOPs with spectral products, so the fraction can pass 100 %), and the projected time for a
LibriSpeech-960-sized workload (3.46 M s of audio). The last line is one JSON object.

    python benchmarks/bench_profile.py [--utterances 6] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gradnap.models import Wav2Letter
from gradnap.profiling import ModelSpec, Profiler
from gradnap.profiling.distributed import all_reduce_profiler, shard

LIBRISPEECH_960_S = 3.46e6
NOMINAL_PEAK = {"H100": 67e12, "H200": 67e12, "A100": 19.5e12}  # float32, non-tensor-core


def utterances(n: int, seed: int) -> list[torch.Tensor]:
    rng = np.random.default_rng(seed)
    seconds = np.clip(rng.lognormal(np.log(13.0), 0.45, size=n), 2.0, 30.0)
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(128, int(s * 100), generator=g) for s in seconds]


def model_spec(seed: int) -> ModelSpec:
    torch.manual_seed(seed)
    return ModelSpec.from_wav2letter(Wav2Letter.from_preset("paper").eval())


def flop_per_event(spec: ModelSpec) -> float:
    """Multiply-adds x 2 of one event's one-hot gradient travelling down its cone by direct
    transposed convolutions: for each layer, C_out x C_in x kernel over the support window
    of its output. The fast path does fewer (spectral products where they pay), so rates
    derived from this are direct-equivalent rates and can exceed a GEMM's peak."""
    total = 0.0
    for layer in spec.stack.layers:
        conv = layer.conv
        width = spec.geometry.support_width(layer.name)
        total += 2.0 * conv.out_channels * conv.in_channels * conv.kernel_size[0] * width
    return total


def gemm_peak(device: str) -> float:
    n = 2048
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    reps, t0 = 5 if device == "cpu" else 50, time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def worker(rank, world, port, n_utt, seed, device, batch_events, queue):
    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    spec = model_spec(seed)
    items = utterances(n_utt, seed)
    mine = shard([x.shape[1] for x in items], rank, world)
    prof = Profiler(spec, group_by=["grapheme"], device=device, batch_events=batch_events)
    prof.update(items[0][:, :300])  # warm-up (not counted)
    prof = Profiler(spec, group_by=["grapheme"], device=device, batch_events=batch_events)
    if world > 1:
        dist.barrier()
    t0 = time.perf_counter()
    events = sum(prof.update(items[i], index=i) for i in mine)
    if world > 1:
        all_reduce_profiler(prof)
        dist.barrier()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    total = prof.n_events_
    if rank == 0:
        queue.put({"wall_s": wall, "events": total, "events_rank0": events})
    if world > 1:
        dist.destroy_process_group()


def run(world, n_utt, seed, device="cpu", batch_events=128) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(
        worker,
        args=(world, port, n_utt, seed, device, batch_events, queue),
        nprocs=world,
        start_method="spawn",
    )
    out = queue.get(timeout=60)
    audio = sum(x.shape[1] for x in utterances(n_utt, seed)) / 100
    out.update(
        processes=world,
        device=device,
        utterances_per_s=n_utt / out["wall_s"],
        audio_s_per_s=audio / out["wall_s"],
        events_per_s=out["events"] / out["wall_s"],
        audio_s=audio,
    )
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--utterances", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gpu-utterances", type=int, default=64)
    ap.add_argument("--gpu-batch-events", type=int, default=1024)
    args = ap.parse_args()
    spec = model_spec(args.seed)
    flop = flop_per_event(spec)
    print(
        f"paper preset: {sum(p.numel() for p in spec.model.parameters()):,} parameters; "
        f"{flop / 1e9:.2f} GFLOP per event by direct transposed convolutions down the cone"
    )
    rows = {}
    for world in (1, 2):
        r = run(world, args.utterances, args.seed)
        rows[f"cpu_{world}proc"] = r
        print(
            f"cpu, {world} process(es) x 1 thread: {r['utterances_per_s']:.3f} utt/s, "
            f"{r['audio_s_per_s']:.2f} audio s/s, {r['events_per_s']:.1f} events/s "
            f"({r['events']} events, {r['audio_s']:.0f} s of audio, {r['wall_s']:.1f} s)"
        )
    torch.set_num_threads(2)
    cpu_peak = gemm_peak("cpu")
    cpu_rate = rows["cpu_2proc"]["events_per_s"] * flop
    speedup = rows["cpu_2proc"]["events_per_s"] / rows["cpu_1proc"]["events_per_s"]
    print(f"2 processes / 1 process: {speedup:.2f}x")
    print(
        f"cpu: {cpu_rate / 1e9:.1f} GFLOP/s direct-equivalent with 2 processes, "
        f"{cpu_rate / cpu_peak:.0%} of a dense float32 GEMM on 2 threads "
        f"({cpu_peak / 1e9:.0f} GFLOP/s)"
    )
    best, device_name, fraction, nominal = (
        rows["cpu_2proc"],
        "cpu (2 processes)",
        cpu_rate / cpu_peak,
        None,
    )
    if torch.cuda.is_available():
        r = run(1, args.gpu_utterances, args.seed, "cuda", args.gpu_batch_events)
        rows["cuda"] = r
        name = torch.cuda.get_device_name()
        peak = gemm_peak("cuda")
        rate = r["events_per_s"] * flop
        nominal = next((v for k, v in NOMINAL_PEAK.items() if k in name), None)
        print(
            f"{name}: {r['utterances_per_s']:.2f} utt/s, {r['audio_s_per_s']:.1f} audio s/s, "
            f"{r['events_per_s']:.0f} events/s; {rate / 1e12:.2f} TFLOP/s direct-equivalent = "
            f"{rate / peak:.0%} of "
            f"a measured float32 GEMM ({peak / 1e12:.1f} TFLOP/s)"
            + (
                f", {rate / nominal:.0%} of the nominal {nominal / 1e12:.0f} TFLOP/s"
                if nominal
                else ""
            )
        )
        best, device_name, fraction = r, name, rate / peak
    projected = LIBRISPEECH_960_S / best["audio_s_per_s"]
    print(
        f"projected LibriSpeech 960 h ({LIBRISPEECH_960_S:.3g} s of audio) on {device_name}: "
        f"{projected / 3600:.1f} h"
    )
    print(
        json.dumps(
            {
                "preset": "paper",
                "speedup_2proc_cpu": speedup,
                "events_per_s": best["events_per_s"],
                "audio_s_per_s": best["audio_s_per_s"],
                "device": device_name,
                "flop_per_event": flop,
                "achieved_flop_per_s": best["events_per_s"] * flop,
                "fraction_of_peak": fraction,
                "nominal_peak_flop_per_s": nominal,
                "projected_librispeech960_s": projected,
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
