"""Whole-pipeline speed of the fast exact sensitivities against per-event autograd.

On the ``paper`` preset (random weights: nearly every frame is an event) and utterances of
2, 10 and 30 s, the same events go through forward, sensitivities, alignment, crop and
accumulation with ``backend="fast"`` and ``backend="reference"`` (and Captum's
``LayerGradientXActivation`` per time step when captum is installed: A*G for the input and
every layer, one call per event), interleaved in rounds in one process, after one untimed
warm-up round (first calls build kernels, FFT plans and the fast path's kernel spectra: a
corpus run pays that once). Per method its best round (on a shared machine noise only adds
time; the JSON also has the ratios of the medians). Prints events/s, the ratios and the
largest difference between the fast and the reference profiles; the last line is one JSON
object.

    python benchmarks/bench_sensitivity.py [--reference-events 6] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from gradnap.models import Wav2Letter
from gradnap.profiling import ModelSpec, Profiler


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def profile_events(spec, x, frames, method):
    prof = Profiler(spec, group_by=["grapheme"], backend=method, batch_events="auto")
    n = prof.update(x, frames=frames)
    return n, prof


def captum_events(model, x, frames, classes):
    """G*A of the input and every layer per event, one ``attribute`` call each (an Identity
    in front of the model stands for the input, so one backward serves all of them, as in
    the reference and the fast path)."""
    from captum.attr import LayerGradientXActivation

    wrapped = torch.nn.Sequential(torch.nn.Identity(), model)
    layers = [wrapped[0]] + [m for _, m in model.layers()]
    attr = LayerGradientXActivation(wrapped, layers)
    for t, c in zip(frames, classes):
        attr.attribute(x, target=(int(c), int(t)))
    return len(frames)


def max_rel_diff(a, b):
    worst = 0.0
    for layer in a.children:
        for var in ("gradnap", "mean_gradient", "navai", "nap"):
            va, vb = a[layer][var].values, b[layer][var].values
            scale = max(float(np.abs(vb).max()), 1e-30)
            worst = max(worst, float(np.abs(va - vb).max()) / scale)
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference-events", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", default="2,10,30")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = Wav2Letter.from_preset("paper").eval().to(args.device)
    spec = ModelSpec.from_wav2letter(model)
    try:
        import captum  # noqa: F401

        have_captum = True
    except ImportError:
        have_captum = False
    results = {}
    worst = 0.0
    for seconds in [float(s) for s in args.seconds.split(",")]:
        t_in = int(seconds * 100)
        x = torch.randn(128, t_in, device=args.device)
        with torch.no_grad():
            pred = model(x[None])[0].argmax(0)
        events = torch.nonzero(pred != 0).flatten()
        rng = np.random.default_rng(0)
        sub = np.sort(
            rng.choice(events.cpu().numpy(), min(args.reference_events, len(events)), replace=False)
        )
        times = {"fast_all": [], "fast_sub": [], "reference": [], "captum": [], "forward": []}
        counts = {}
        warm = sub[:2]
        profile_events(spec, x, None, "fast")
        profile_events(spec, x, warm, "reference")
        if have_captum:
            captum_events(model, x[None], warm, pred[warm].tolist())
        for _ in range(args.rounds):
            dt, (n, fast_all) = timed(profile_events, spec, x, None, "fast")
            times["fast_all"].append(dt / n)
            counts["fast_all"] = n
            dt, (n, fast_sub) = timed(profile_events, spec, x, sub, "fast")
            times["fast_sub"].append(dt / n)
            dt, (n, ref_sub) = timed(profile_events, spec, x, sub, "reference")
            # the reference's forward is shared by all events of the utterance: charge it
            # as if the reference ran them all, like the fast path does
            fwd, _ = timed(profile_events, spec, x, [], "reference")
            times["forward"].append(fwd)
            times["reference"].append((dt - fwd) / n + fwd / len(events))
            if have_captum:
                dt, n = timed(captum_events, model, x[None], sub, pred[sub].tolist())
                times["captum"].append(dt / n)
        diff = max_rel_diff(fast_sub.result(), ref_sub.result())
        worst = max(worst, diff)
        # each method's best round: on a shared machine noise only ever adds time (the
        # medians are kept in the JSON too)
        rate = {k: 1.0 / float(np.min(v)) for k, v in times.items() if v}
        median = {k: 1.0 / float(np.median(v)) for k, v in times.items() if v}
        row = {
            "seconds": seconds,
            "events_in_utterance": counts["fast_all"],
            "fast_events_per_s": rate["fast_all"],
            "reference_events_per_s": rate["reference"],
            "captum_events_per_s": rate.get("captum"),
            "ratio_vs_reference": rate["fast_all"] / rate["reference"],
            "ratio_vs_captum": rate["fast_all"] / rate["captum"] if "captum" in rate else None,
            "median_ratio_vs_reference": median["fast_all"] / median["reference"],
            "median_ratio_vs_captum": (
                median["fast_all"] / median["captum"] if "captum" in median else None
            ),
            "max_rel_diff": diff,
        }
        results[seconds] = row
        print(
            f"{seconds:5.0f} s  events {row['events_in_utterance']:5d}  fast "
            f"{row['fast_events_per_s']:8.1f}/s  reference {row['reference_events_per_s']:6.2f}"
            f"/s  captum "
            + (f"{row['captum_events_per_s']:6.2f}/s" if have_captum else "   n/a")
            + f"  fast/reference {row['ratio_vs_reference']:6.1f}x  fast/captum "
            + (f"{row['ratio_vs_captum']:6.1f}x" if have_captum else "  n/a")
            + f"  max rel diff {diff:.1e}",
            flush=True,
        )
    ten = results.get(10.0, next(iter(results.values())))
    print(
        json.dumps(
            {
                "preset": "paper",
                "device": args.device,
                "torch_threads": torch.get_num_threads(),
                "ratio_vs_reference_10s": ten["ratio_vs_reference"],
                "ratio_vs_captum_10s": ten["ratio_vs_captum"],
                "max_rel_diff": worst,
                "rows": list(results.values()),
            }
        )
    )


if __name__ == "__main__":
    main()
