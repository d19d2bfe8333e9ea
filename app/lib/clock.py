"""The one place that reads the wall clock, so tests can reason about time."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def now_seconds() -> float:
    """The same clock as ``utcnow``, as POSIX seconds (for per-request arithmetic that needs no datetime)."""
    return time.time()
