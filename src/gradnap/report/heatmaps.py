"""Profile heatmaps for the report pages: bare images, axes drawn once per layer in HTML.

Every group's profile of a layer has the same shape (neurons x offsets), so the axes (time
offset in ms; neuron index, or the mel bin's centre frequency in Hz for the input) and the
colour bar are laid out once per layer (:func:`layout`) and the page draws them around a
bare image per group (:func:`write_heatmap`: numpy colour lookup, PNG via Pillow, no
matplotlib figure). Each image is scaled to its own largest magnitude, symmetric about
zero (the page prints that value at the ends of the colour bar). Neuron rows are drawn one
per row of pixels up to :data:`MAX_ROWS`; a layer with more neurons is binned (each row
shows the value of largest magnitude among ``bin`` adjacent neurons), and the page says so.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

from gradnap.atomic import atomic_write

CMAP = "RdBu_r"  # diverging, centred on zero (as the matplotlib figures)
MAX_ROWS = 400  # more neurons than this: binned
TARGET_HEIGHT = 320  # px, reached with whole pixels per neuron row
TARGET_WIDTH = 240  # px, reached with whole pixels per offset
HZ_TICKS = (100, 250, 500, 1000, 2000, 4000, 8000)


def _lut(cmap: str = CMAP) -> np.ndarray:
    rgba = matplotlib.colormaps[cmap](np.linspace(0, 1, 256))
    return (rgba[:, :3] * 255).round().astype(np.uint8)


LUT = _lut()
SEQUENTIAL_LUT = _lut("magma")  # for values not centred on zero (mean log-mel inputs)


def _nice_step(span: float, ticks: int = 6) -> float:
    raw = span / max(ticks, 1)
    if raw <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def layout(n_neurons: int, offset_ms, frequency=None) -> dict:
    """How a layer's heatmaps are drawn: ``bin`` (neurons per row), ``rows``, pixel size
    (``width_px``, ``height_px``, ``row_px``, ``col_px``), the ticks of both axes as
    ``(position in % from the left or bottom, label)``, axis titles and a ``note`` that
    says how rows map to neurons."""
    offset_ms = np.asarray(offset_ms, dtype=float)
    width = len(offset_ms)
    bin_ = max(1, math.ceil(n_neurons / MAX_ROWS))
    rows = math.ceil(n_neurons / bin_)
    row_px = max(1, TARGET_HEIGHT // rows)
    col_px = max(1, TARGET_WIDTH // width)
    frame = float(offset_ms[1] - offset_ms[0]) if width > 1 else 0.0
    x_ticks = []
    if width == 1:
        x_ticks.append((50.0, f"{offset_ms[0]:g}"))
    else:
        step = _nice_step(offset_ms[-1] - offset_ms[0])
        v = math.ceil(offset_ms[0] / step) * step
        while v <= offset_ms[-1] + 1e-9:
            x_ticks.append((100 * ((v - offset_ms[0]) / frame + 0.5) / width, f"{v:g}"))
            v += step
    y_ticks = []
    if frequency is not None:
        freq = np.asarray(frequency, dtype=float)
        for f in HZ_TICKS:
            if f <= freq[-1] * 1.01:
                i = int(np.argmin(np.abs(freq - f)))
                label = f"{f:g}" if f < 1000 else f"{f / 1000:g}k"
                y_ticks.append((100 * (i // bin_ + 0.5) / rows, label))
        y_title = "frequency (Hz, mel scale)"
    else:
        step = max(1, int(_nice_step(n_neurons, 5)))
        for i in range(0, n_neurons, step):
            y_ticks.append((100 * (i // bin_ + 0.5) / rows, str(i)))
        y_title = "neuron"
    if bin_ == 1:
        note = f"every one of the {n_neurons} neuron rows shown"
    else:
        note = (
            f"binned: each of the {rows} rows shows the value of largest magnitude among "
            f"{bin_} adjacent neurons ({n_neurons} in all)"
        )
    return {
        "bin": bin_,
        "rows": rows,
        "row_px": row_px,
        "col_px": col_px,
        "width_px": width * col_px,
        "height_px": rows * row_px,
        "x_ticks": x_ticks,
        "y_ticks": y_ticks,
        "x_title": "time offset (ms)",
        "y_title": y_title,
        "frame_ms": frame,
        "note": note,
    }


def binned(values: np.ndarray, bin_: int) -> np.ndarray:
    """``(neurons, offsets)`` -> ``(ceil(neurons / bin_), offsets)``: per block of ``bin_``
    neurons the value of largest magnitude (sign kept)."""
    values = np.asarray(values, dtype=np.float64)
    if bin_ == 1:
        return values
    n, w = values.shape
    pad = (-n) % bin_
    v = np.concatenate([values, np.zeros((pad, w))]).reshape(-1, bin_, w)
    pick = np.abs(v).argmax(axis=1)
    return np.take_along_axis(v, pick[:, None, :], axis=1)[:, 0, :]


def heatmap_rgb(values: np.ndarray, lay: dict) -> tuple[np.ndarray, float]:
    """The image ``(height_px, width_px, 3)`` uint8 (neuron 0 at the bottom) and the
    magnitude that maps to the ends of the colour bar. NaN is drawn grey."""
    v = binned(values, lay["bin"])
    finite = np.isfinite(v)
    vmax = float(np.abs(v[finite]).max()) if finite.any() else 0.0
    scale = vmax or 1.0
    idx = np.clip(np.round((np.nan_to_num(v) / scale + 1) * 127.5), 0, 255)
    return _pixels(idx, finite, lay, LUT), vmax


def _pixels(idx: np.ndarray, finite: np.ndarray, lay: dict, lut: np.ndarray) -> np.ndarray:
    """Colour indices ``(rows, offsets)`` (row 0 at the bottom) -> the image, NaN grey, each
    row and offset repeated to the layout's pixel size."""
    rgb = lut[idx.astype(np.uint8)]
    rgb[~finite] = 160
    return np.repeat(np.repeat(rgb[::-1], lay["row_px"], axis=0), lay["col_px"], axis=1)


def write_png(rgb: np.ndarray, path: str | Path) -> Path:
    """Write an RGB array as PNG (temporary name, then rename)."""
    with atomic_write(path, suffix=".png") as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG", compress_level=3)
    return Path(path)


def write_heatmap(values: np.ndarray, lay: dict, path: str | Path) -> float:
    """Draw one profile ``(neurons, offsets)`` as a bare image; returns its ``vmax``."""
    rgb, vmax = heatmap_rgb(values, lay)
    write_png(rgb, path)
    return vmax


def write_sequential(values: np.ndarray, lay: dict, path: str | Path) -> tuple[float, float]:
    """Draw ``(rows, offsets)`` values (row 0 at the bottom) on the sequential colour scale
    from their smallest to their largest finite value; returns ``(lo, hi)``. NaN is grey."""
    v = binned(values, lay["bin"])
    finite = np.isfinite(v)
    lo = float(v[finite].min()) if finite.any() else 0.0
    hi = float(v[finite].max()) if finite.any() else 0.0
    span = hi - lo or 1.0
    idx = np.clip(np.round((np.nan_to_num(v, nan=lo) - lo) / span * 255), 0, 255)
    write_png(_pixels(idx, finite, lay, SEQUENTIAL_LUT), path)
    return lo, hi


def write_colorbar(
    path: str | Path, height: int = 256, width: int = 12, lut: np.ndarray = LUT
) -> Path:
    """A colour scale as a vertical image, its largest value at the top (for the diverging
    scale: +vmax, 0 in the middle, -vmax at the bottom)."""
    ramp = lut[np.linspace(255, 0, height).round().astype(int)]
    return write_png(np.repeat(ramp[:, None, :], width, axis=1), path)
