"""The report's "what does this neuron listen to" entries (issue 16): for each top neuron
of a chosen group, the audio clips of its top events (WAV) and their mean aligned log-mel
input, drawn as a bare image with axes and a colour scale laid out in HTML (as the profile
heatmaps, :mod:`gradnap.report.heatmaps`).
"""

from __future__ import annotations

from pathlib import Path

import soundfile as sf

from gradnap.atomic import atomic_write
from gradnap.report import heatmaps
from gradnap.report.slugs import slug

SPECTROGRAM_COLORBAR = "colorbar-magma.png"


def spectrogram_layout(listening) -> dict:
    """The axes of a mean log-mel window (frequency in Hz, mel scale; offset in ms)."""
    spec = listening.spectrogram
    lay = heatmaps.layout(
        spec.sizes["frequency"], spec["offset_ms"].values, spec["frequency"].values
    )
    lay["x_title"] = "time from the event (ms)"
    return lay


def listen_entries(listener, ds, layer, group, neurons, fig_dir: Path) -> tuple[list, str]:
    """Per top neuron of ``group``: its top events' clips (WAV, each (utterance, time)
    written once) and their mean aligned log-mel input (PNG, sequential colour scale
    from the smallest to the largest mean ln power, with its layout for the page).

    Returns ``(entries, note)``; the note says why clips are missing (no corpus here)."""
    if "top_utterance" not in ds:
        return [], ""
    sub = fig_dir / "listen" / slug(layer)
    sub.mkdir(parents=True, exist_ok=True)
    entries = []
    try:
        for n in neurons:
            heard = listener.neuron(layer, group, int(n))
            clips = []
            for c in heard.clips:
                name = f"{slug(c.utterance)}_{round(c.time * 1000)}ms.wav"
                if not (fig_dir / "listen" / name).exists():
                    with atomic_write(fig_dir / "listen" / name) as tmp:
                        sf.write(tmp, c.audio, c.sample_rate, format="WAV")
                clips.append(
                    {"src": f"figures/listen/{name}", "utterance": c.utterance,
                     "time": f"{c.time:.2f}", "activation": f"{c.activation:.3g}"}
                )  # fmt: skip
            lay = spectrogram_layout(heard)
            stem = f"{slug(group)}_n{int(n)}.png"
            lo, hi = heatmaps.write_sequential(heard.spectrogram.values, lay, sub / stem)
            entries.append(
                {
                    "neuron": int(n),
                    "clips": clips,
                    "layout": lay,
                    "image": {
                        "src": f"figures/listen/{slug(layer)}/{stem}",
                        "alt": f"mean log-mel around the top events of neuron {int(n)}",
                        "label": f"neuron {int(n)}: mean log-mel input (ln power)",
                        "top": f"{hi:.3g}",
                        "mid": f"{(lo + hi) / 2:.3g}",
                        "bot": f"{lo:.3g}",
                    },
                }
            )
    except (OSError, ValueError, KeyError) as exc:  # no corpus here: say so, draw the rest
        return entries, f"audio of the top events not found ({exc})"
    return entries, ""
