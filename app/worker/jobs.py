"""The explicit registry of job functions the worker runs (name → coroutine)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from app.domain.accounts.jobs import record_audit_event

JOBS: dict[str, Callable[..., Awaitable[Any]]] = {
    "audit.record": record_audit_event,
}
