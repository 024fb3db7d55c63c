"""Process groups under ``torchrun``, shared by profiling and training.

:func:`process_group` joins the group ``torchrun`` describes (``WORLD_SIZE`` > 1; gloo on
the CPU, NCCL on CUDA) for the duration of a block and tears it down afterwards, but only
a group it created itself: a caller that set one up keeps it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist


def init_from_env(device: str = "cpu") -> bool:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1) unless one
    exists; returns whether this call created it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    backend = "nccl" if str(device).startswith("cuda") else "gloo"
    dist.init_process_group(backend)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return True


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 outside a group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextmanager
def process_group(device: str = "cpu") -> Iterator[tuple[int, int]]:
    """``with process_group(device) as (rank, world):`` the block runs in the process group
    of ``torchrun`` (if any); a group created here is destroyed when the block ends."""
    created = init_from_env(device)
    try:
        yield rank_and_world()
    finally:
        if created:
            dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (nothing outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
