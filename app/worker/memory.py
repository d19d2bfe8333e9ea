"""Freed heap given back to the system between jobs (glibc's ``malloc_trim``).

A worker's jobs allocate and free tens of megabytes each (a sync's pages, its snapshot, the COPY rows). glibc keeps
what is freed in its heap and returns only a free top of it, so with many jobs interleaving the heap's middle stays
resident: a worker's resident set climbed to its high-water mark and stayed there — in ``bench.fleet`` (200 first
syncs, ``max_jobs`` 20) 289 MB once the queue was empty, 178 MB after one ``malloc_trim(0)`` (docs/scaling.md, "The
fleet with marketplace latency"). At start-up the worker keeps glibc's mmap threshold where it is
(``pin_mmap_threshold``: large page buffers are then given back as they are freed, not left in the heap), and after
a job ends it trims, at most once per ``interval_s``: a trim took 8–12 ms on a fragmented ~230 MB heap (106 ms when
it gave back 190 MB), so once a second bounds it to ~1–10 % of a core whatever the job rate. The worker is one
thread (no arenas to cap with ``MALLOC_ARENA_MAX``). Where the C library has no ``malloc_trim`` (musl, macOS) this
does nothing. What this lowers is the resident set after the work; the peak under load is mostly live data and
barely moved.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from typing import Any, cast

TRIM_INTERVAL_S = 1.0
# glibc's own default: a block this large or larger is mmapped, and unmapped (given back) when freed.
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def _libc_function(name: str) -> Any:
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def pin_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Keep glibc's mmap threshold at ``size`` (whether it could).

    glibc raises the threshold to the size of any mmapped block that is freed (up to 32 MB): after a sync's
    first orders page (~2.7 MB for a seller of ~1 000 variants, up to 6 MB kept plain) was freed, every later
    page buffer came from the heap, and the heap's middle, once freed, stays resident. Setting the threshold
    once turns that adjustment off: a buffer above it is mapped for its lifetime and given back when freed.
    """
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, size))


def _malloc_trim() -> Callable[[int], int] | None:
    trim = _libc_function("malloc_trim")
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return cast(Callable[[int], int], trim)


class HeapTrimmer:
    """Calls ``malloc_trim(0)`` from ``after_job``, at most once per ``interval_s`` (``trims`` counts them)."""

    def __init__(self, interval_s: float = TRIM_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.trims = 0
        self._trim = _malloc_trim()
        self._last: float | None = None

    @property
    def available(self) -> bool:
        return self._trim is not None

    def after_job(self) -> bool:
        """Trim if the last trim is at least ``interval_s`` old; whether it trimmed."""
        if self._trim is None:
            return False
        now = self.clock()
        if self._last is not None and now - self._last < self.interval_s:
            return False
        self._last = now
        self._trim(0)
        self.trims += 1
        return True
