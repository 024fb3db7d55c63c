"""Checkpoints kept along training (``train --keep-checkpoints N``), for
:func:`gradnap.profiling.trajectory.trajectory`.

The N steps are spaced evenly in log(step) from the first step to the last, so the fast
early learning gets as many checkpoints as the slow end. Each kept checkpoint is a model
file (no optimizer state) in ``OUT.steps/step-0000123.pt`` with its ``step``, ``epoch``
(fractional: epochs done when it was written) and ``dev_cer`` stored under
``"trajectory"``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def kept_steps(total_steps: int, n: int) -> list[int]:
    """``min(n, total_steps)`` distinct steps in ``1..total_steps``, evenly spaced in
    log(step), the first and the last included.

    >>> kept_steps(1000, 4)
    [1, 10, 100, 1000]
    """
    n = min(int(n), int(total_steps))
    if n <= 0:
        return []
    if n == 1:
        return [int(total_steps)]
    steps = [int(round(s)) for s in np.geomspace(1, total_steps, n)]
    for i in range(1, n):  # distinct: at least one more than the one before
        steps[i] = max(steps[i], steps[i - 1] + 1)
    steps[-1] = total_steps
    for i in range(n - 2, -1, -1):  # and below the one after
        steps[i] = min(steps[i], steps[i + 1] - 1)
    return steps


def keep_dir(out: str | Path) -> Path:
    """Where the kept checkpoints of a run writing ``out`` go: ``OUT.steps/`` beside it."""
    out = Path(out)
    return out.with_name(f"{out.name}.steps")


def keep_path(out: str | Path, step: int) -> Path:
    return keep_dir(out) / f"step-{step:07d}.pt"


def save_kept(out, model, alphabet, feature_config, step: int, epoch: float, dev_cer: float):
    """Write one kept checkpoint (weights in float32, atomically); returns its path."""
    from gradnap.models.checkpoint import save_checkpoint

    info = {"step": int(step), "epoch": float(epoch), "dev_cer": float(dev_cer)}
    path = keep_path(out, step)
    return save_checkpoint(path, model, alphabet, feature_config, extra={"trajectory": info})
