"""glibc heap settings for frame-sized arrays (no-ops on other C libraries).

Three regimes. Between windows, `steady_heap`: every block over 1 MiB is its own mmap, so
frame buffers that outlive each other cannot fragment the heap and the footprint stays flat
however long the clip. Inside a network's forward pass, `roomy_heap`: its frame-sized
temporaries come from the heap and reuse the same pages frame after frame, instead of being
faulted in and zeroed by the kernel each time. Around a streamed run, `pooled_heap`: the
same for blocks of any size (a 1080p frame's convolutions take ~66 MB blocks, over glibc's
largest mmap threshold), at the price of a larger footprint.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
DEFAULT_MMAP_MAX = 65536
DEFAULT_TRIM_THRESHOLD = 128 << 10
POOLED_TRIM_THRESHOLD = 1 << 40  # never, until the block ends
STEADY_MMAP_THRESHOLD = 1 << 20
ROOMY_MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts


def _glibc() -> ctypes.CDLL | None:
    """glibc, or None elsewhere (macOS, musl, Windows): then the heap is left alone."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 (both must exist)
    except (OSError, AttributeError):
        return None
    return libc


def steady_heap() -> None:
    """Keep glibc from growing the heap with every frame (a no-op elsewhere).

    glibc raises its mmap threshold each time a large block is freed, after which frame-sized
    arrays come from the heap, which fragments: measured on a 640x360 clip, peak RSS grew
    from 390 to 720 MB between frame 12 and 96. A fixed 1 MiB threshold (frames then go
    straight to mmap and back) keeps it flat at ~380 MB.
    """
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, STEADY_MMAP_THRESHOLD)


@contextmanager
def roomy_heap() -> Iterator[None]:
    """Blocks up to 32 MiB come from the heap inside the block; then it is trimmed.

    Under the steady 1 MiB threshold every frame-sized temporary of a network is a fresh
    mmap whose pages the kernel must fault in and zero: STAN at 480p spent ~30% of its CPU
    time in the kernel (1.1 M page faults for 10 frames). Taken from the heap, they reuse the
    same pages frame after frame; trimming afterwards returns what the block freed, so the
    footprint still does not grow with the clip's length.
    """
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_THRESHOLD, ROOMY_MMAP_THRESHOLD)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, STEADY_MMAP_THRESHOLD)
        libc.malloc_trim(0)


@contextmanager
def pooled_heap() -> Iterator[None]:
    """Every block comes from the heap inside the block and the heap is not trimmed until
    it ends (then it is), so that a loop whose working set is the same every step reuses
    the same pages (`snl_cli.model.stream`).

    Measured on STAN's stream at 1920x1080 (16 frames, 2 cores): the mmap regime took 15.4 M
    page faults, 56 s of system time and 70 s in all, peak 2.6 GB; pooled, 3.1 M faults, 26 s
    and 47 s, peak 3.7 GB (freed blocks interleave with the frames kept). The pipeline pools
    only frames small enough for that footprint (`memory.POOL_BUDGET`).
    """
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, POOLED_TRIM_THRESHOLD)
    try:
        yield
    finally:
        libc.mallopt(_M_MMAP_MAX, DEFAULT_MMAP_MAX)
        libc.mallopt(_M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        libc.malloc_trim(0)
