"""A worker's ``after_job_end`` gives the heap its jobs freed back to the system (app/worker/memory.py)."""

from __future__ import annotations

import pytest

from app.worker.memory import HeapTrimmer
from app.worker.settings import build_worker_settings
from tests.unit.worker.test_memory import _freed_fragmented_heap, _rss_mb


async def test_the_worker_trims_the_heap_after_a_job(settings):
    if not HeapTrimmer().available:
        pytest.skip("no malloc_trim in this C library")
    kwargs = build_worker_settings(settings, serve_metrics=False)
    kept = _freed_fragmented_heap()
    before = _rss_mb()
    await kwargs["after_job_end"]({"job_id": "j1"})
    after = _rss_mb()
    assert before - after > 30, (before, after)
    assert kept
