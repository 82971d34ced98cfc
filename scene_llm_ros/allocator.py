"""Keep the memory of freed large buffers in the process for the next ones (glibc malloc).

glibc serves every allocation above its mmap threshold (adaptive, but never above 32 MiB)
with a fresh ``mmap`` and unmaps it on free, so a training step whose tensors are larger
than that pays page faults and the kernel's zeroing for each of them, every step. The
segment listener's (32, 48, 48, 128) relation grid is 38 MB: a GELU over it took 14 ms
instead of 3, and a whole listener step 263 ms instead of 164 (benchmarks/training_steps.py).
Serving large blocks from the heap and never trimming it lets the next step reuse them, as
jemalloc and tcmalloc (PyTorch's CPU tuning advice) do; the price is that the process keeps
its peak memory until it exits, which an offline job does not mind.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

logger = logging.getLogger(__name__)

# mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# A trim threshold of -1 (the largest size) disables trimming, as mallopt(3) documents.
_NEVER = -1


@functools.cache
def reuse_freed_memory() -> bool:
    """Make this process's glibc malloc keep and reuse freed blocks of any size.

    Call it early in offline jobs (training, evaluation, fusion workers), not in the nodes,
    whose memory should follow their load. Does nothing where the C library is not glibc.

    :return: whether the setting took effect.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        logger.debug("no glibc mallopt: freed memory is handled by the platform's allocator")
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _NEVER))
    if not applied:
        logger.debug("mallopt refused the settings: large buffers stay mmap-backed")
    return applied
