"""Keeping the C heap from growing over a long profiling run (glibc).

Measured on one 1-minute file (bundled model, every layer; bench_memory.py's long run):
the memory in use stayed at 358 MB from batch to batch while the heap's free blocks grew
from 45 to 239 MB in 9 batches of events, and a 20-minute file passed 6 GB (VmHWM 6.1 GB)
before its events were done. Each batch frees medium blocks (gradient windows, crops, a
layer's ``|A|``: 0.1-32 MB) between small blocks that live until the utterance's window
sums (the pending window starts), so the freed space cannot go back to the system; and
glibc raises its mmap threshold to the size of every mmapped block freed (up to 32 MB), so
the next medium blocks come from that fragmented heap too. A fixed threshold of 1 MB gives
every block from 1 MB up its own mapping, returned when freed: the same run stayed at
130 MB in use and 1-9 MB free, peak 738 MB against 974 MB. It is not free: mapping and
zeroing every block over 1 MB made 10 s utterances ~30 % slower, so the Profiler fixes the
threshold only once it meets an input over a minute long (``run.LONG_INPUT_FRAMES``).
"""

from __future__ import annotations

import ctypes
import functools

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
MMAP_THRESHOLD = 1 << 20


@functools.cache
def bound_heap(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes for this process (once); returns
    False where the C library has no ``mallopt`` (not glibc: nothing to do)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
