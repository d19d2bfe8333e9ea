"""Bodies of the sync API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

SyncStatusName = Literal["queued", "running", "succeeded", "partially_failed", "failed"]


class SyncRunAccepted(msgspec.Struct):
    """The queued (or already running) run the request started or joined."""

    id: uuid.UUID
    status: SyncStatusName


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


class SyncRunPage(msgspec.Struct):
    items: list[SyncRun]
    next_cursor: str | None = None
