"""Checks of a run's settings, before any work: each bad value is one ValueError that
names the option and what it accepts (the CLI prints it as one line)."""

from __future__ import annotations

import re
from collections.abc import Sequence

CROP_WIDTHS = ("support", "receptive_field")


def check_device(device: str) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``, and CUDA only where a CUDA device is present."""
    import torch

    if not re.fullmatch(r"cpu|cuda(:\d+)?", str(device)):
        raise ValueError(f"--device {device}: use cpu, cuda or cuda:N")
    if str(device).startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no CUDA device is available here")
        index = int(str(device).partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {device}: there are {torch.cuda.device_count()} CUDA device(s)"
            )
    return str(device)


def check_groupings(group_by: Sequence) -> tuple:
    """At least one grouping (names or grouping objects; the profiler checks the names)."""
    group_by = tuple(group_by)
    if not group_by:
        raise ValueError("--group-by: give at least one grouping (grapheme, phoneme, ...)")
    return group_by


def positive_int(value, option: str, allowed: Sequence[str] = ()) -> int | str:
    """``value`` as an int >= 1 (or one of the words in ``allowed``), else ValueError."""
    if isinstance(value, str) and value in allowed:
        return value
    try:
        number = int(value)
        ok = number >= 1 and not isinstance(value, bool) and float(value) == number
    except (TypeError, ValueError):
        ok = False
    if not ok:
        words = f" or {', '.join(allowed)}" if allowed else ""
        raise ValueError(f"{option} must be a positive whole number{words}, not {value!r}")
    return number


def check_profile_options(
    group_by: Sequence[str] = ("grapheme",),
    batch_events="auto",
    crop_width="support",
    device: str = "cpu",
    limit: int | None = None,
) -> None:
    """The settings of a profile run (see :func:`gradnap.profiles`)."""
    check_groupings(group_by)
    positive_int(batch_events, "--batch-events", ("auto",))
    widths = crop_width.values() if isinstance(crop_width, dict) else [crop_width]
    for width in widths:
        positive_int(width, "--crop-width", CROP_WIDTHS)
    check_device(device)
    if limit is not None:
        positive_int(limit, "--limit")


# One thread per process: on a 2-core machine busy with other work, two torch threads
# profiled 6-8x slower than one (OpenMP threads spin waiting for a core: 9.4 s of CPU
# against 1.0 s for the same 6 utterances); see the README for the figures.
DEFAULT_THREADS = 1
THREADS_HELP = "Threads for the computation (0: all cores); 1 is fastest on a shared machine."


def set_threads(n: int) -> int:
    """Use ``n`` threads for torch's computations (0: one per core); returns the count."""
    import os

    import torch

    if isinstance(n, bool) or int(n) != n or n < 0:
        raise ValueError(f"--threads must be 0 (all cores) or a positive number, not {n}")
    torch.set_num_threads(int(n) or os.cpu_count() or 1)
    return torch.get_num_threads()
