"""Bodies of the sync API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

SyncStatusName = Literal["queued", "running", "waiting", "succeeded", "partially_failed", "failed"]


class SyncRunAccepted(msgspec.Struct):
    """The queued run the request started, or the live (queued, running or waiting) run it joined; a waiting
    run goes on at ``resume_at``."""

    id: uuid.UUID
    status: SyncStatusName
    resume_at: datetime | None = None


class SyncRun(msgspec.Struct):
    id: uuid.UUID
    connection_id: uuid.UUID
    trigger: str
    status: SyncStatusName
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    attempts: int
    counts: dict[str, Any]
    stages: dict[str, Any]
    error_code: str | None
    error: str | None
    # waiting: when the run goes on, and why it waits (which marketplace limit); null otherwise.
    resume_at: datetime | None = None
    status_reason: str | None = None
    # Seconds the run has waited on marketplace limits (capped by the deployment's SYNC_MAX_WAIT_S).
    waited_seconds: float = 0.0
    # Times this run was resumed under a fresh job after its worker stopped (at most the deployment's
    # SYNC_MAX_RESUMES; past it the run ends failed/abandoned). While queued again, status_reason says why.
    resumes: int = 0


class SyncRunPage(msgspec.Struct):
    items: list[SyncRun]
    next_cursor: str | None = None
