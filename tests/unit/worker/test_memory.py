"""The worker gives freed heap back to the system after its jobs, at most once per interval."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path

import pytest

from app.worker.memory import HeapTrimmer

ROOT = Path(__file__).resolve().parents[3]


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _freed_fragmented_heap() -> list[bytes]:
    """~80 MB of malloc'd buffers (above pymalloc's 512 bytes, below mmap's threshold), every 20th kept, so
    glibc cannot give the freed rest back by shrinking the top of its heap: what ``malloc_trim`` is for."""
    rng = random.Random(13)
    buffers = [bytes(rng.randrange(600, 4000)) for _ in range(40_000)]
    kept = buffers[::20]
    del buffers
    return kept


@pytest.fixture
def trimmer() -> HeapTrimmer:
    trimmer = HeapTrimmer()
    if not trimmer.available:
        pytest.skip("no malloc_trim in this C library")
    return trimmer


def test_a_trim_after_a_job_gives_the_freed_heap_back(trimmer: HeapTrimmer) -> None:
    kept = _freed_fragmented_heap()
    before = _rss_mb()
    assert trimmer.after_job()
    after = _rss_mb()
    assert before - after > 30, (before, after)  # most of the ~80 MB freed, not only the heap's top
    assert kept  # the survivors stay where they are


def test_at_most_one_trim_per_interval() -> None:
    now = [100.0]
    trimmer = HeapTrimmer(interval_s=1.0, clock=lambda: now[0])
    if not trimmer.available:
        pytest.skip("no malloc_trim in this C library")
    assert trimmer.after_job()
    now[0] += 0.4
    assert not trimmer.after_job()
    now[0] += 0.6
    assert trimmer.after_job()
    assert not trimmer.after_job()
    assert trimmer.trims == 2


async def test_jobs_that_end_within_the_interval_get_one_trim_once_it_is_up() -> None:
    """The last jobs of a burst are not left untrimmed until the next job comes: a job that ends too soon
    after a trim has one trim scheduled for when the interval is up, shared by every job that ends before it."""
    trimmer = HeapTrimmer(interval_s=0.2)
    if not trimmer.available:
        pytest.skip("no malloc_trim in this C library")
    assert trimmer.after_job()
    assert not trimmer.after_job()
    assert not trimmer.after_job()
    assert trimmer.trims == 1
    await asyncio.sleep(0.5)
    assert trimmer.trims == 2  # one trailing trim for both
    assert trimmer.after_job()  # the interval since that one is up again


_BIG_BUFFERS = """
import sys
from app.worker.memory import pin_mmap_threshold
from tests.unit.worker.test_memory import _rss_mb
if sys.argv[1] == "pin":
    assert pin_mmap_threshold()
big = bytearray(8 << 20)
del big  # glibc, left alone, now takes blocks up to 8 MB from the heap
buffers, kept = [], []
for _ in range(40):  # 120 MB of page-sized buffers, every page touched, a small survivor after each
    buffer = bytearray(3 << 20)
    buffer[::4096] = b"x" * len(buffer[::4096])
    buffers.append(buffer)
    kept.append(bytes(1000))
before = _rss_mb()
del buffers
print(round(before - _rss_mb()))
"""


@pytest.mark.parametrize(("mode", "given_back"), [("pin", True), ("leave", False)])
def test_a_pinned_mmap_threshold_gives_large_buffers_back_when_freed(mode: str, given_back: bool) -> None:
    """In a process of its own (the threshold is process-wide): with glibc left alone, freed page-sized
    buffers stay resident (the control); pinned, they are given back as they are freed, with no trim."""
    if HeapTrimmer().available is False:
        pytest.skip("not glibc")
    out = subprocess.run(
        [sys.executable, "-c", _BIG_BUFFERS, mode], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    released = int(out.strip())
    assert (released > 100) is given_back, released
