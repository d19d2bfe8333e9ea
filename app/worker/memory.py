"""Freed heap given back to the system (glibc's mmap threshold and ``malloc_trim``).

A worker's jobs allocate and free tens of megabytes each (a sync's pages, its snapshot, the COPY rows). glibc keeps
what is freed in its heap and returns only a free top of it: in ``bench.fleet`` (200 first syncs, ``max_jobs`` 20) a
worker held 289 MB once the queue was empty, 178 MB after one ``malloc_trim(0)`` (docs/scaling.md, "The fleet with
marketplace latency"). So at start-up the worker pins glibc's mmap threshold (``pin_mmap_threshold``: large page
buffers are given back as they are freed, not left in the heap; ~12–16 MB off the peak), and after a job it trims
(``HeapTrimmer``: at most once per ``interval_s``, and once more when the interval is up after a burst's last jobs;
8–12 ms on a fragmented ~230 MB heap, well under 1 ms on a small one). Where the C library has no ``mallopt`` /
``malloc_trim`` (musl, macOS) these do nothing.

The trim was held back for a while: with it wired in, the three-SIGKILL lifecycle test hung. That hang was the
test's own (it hung 3 times in 10 without the trim too): its last SIGKILL often caught a run's alerts or event job in
flight, whose in-progress key (610 s) the test did not expire, so its final burst worker waited for it
(docs/scaling.md, "The worker's memory (issue 13, fifth stop)").

What stays resident between jobs after the trim (~70 MB above start-up) is not the heap: it is pymalloc's arenas.
Python's own allocator keeps a 1 MiB arena until every object in it is freed; the jobs in flight at the peak fill ~70
arenas more than start-up, and the few objects that outlive them (SQLAlchemy's compiled statements, asyncpg's
prepared statements and pooled connections, lazily imported modules: ~1–3 MB in all) keep most of those arenas. The
free space in them is reused by the next jobs, so it does not add to the next peak; nothing there grows with the
number of tenants (docs/scaling.md has the figures). ``PYTHONMALLOC=malloc`` (glibc for every object, then trimmed)
was measured and not taken: ~50 % more worker CPU and a higher peak.
"""

from __future__ import annotations

import asyncio
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
    """Calls ``malloc_trim(0)`` from ``after_job``, at most once per ``interval_s`` (``trims`` counts them).

    A job that ends too soon after a trim, inside a running event loop, has one trim scheduled for when the
    interval is up (shared by every job that ends before then): the last jobs of a burst are trimmed after too,
    not left until the next job comes."""

    def __init__(self, interval_s: float = TRIM_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.clock = clock
        self.trims = 0
        self._trim = _malloc_trim()
        self._last: float | None = None
        self._pending: asyncio.TimerHandle | None = None

    @property
    def available(self) -> bool:
        return self._trim is not None

    def after_job(self) -> bool:
        """Trim if the last trim is at least ``interval_s`` old, else once it is; whether it trimmed now."""
        if self._trim is None:
            return False
        now = self.clock()
        if self._last is not None and now - self._last < self.interval_s:
            self._trim_later(self._last + self.interval_s - now)
            return False
        self._trim_now(now)
        return True

    def _trim_later(self, delay: float) -> None:
        if self._pending is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside a loop: the next job's trim will do
            return
        self._pending = loop.call_later(delay, self._trailing)

    def _trailing(self) -> None:
        self._pending = None
        self._trim_now(self.clock())

    def _trim_now(self, now: float) -> None:
        assert self._trim is not None
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._last = now
        self._trim(0)
        self.trims += 1
