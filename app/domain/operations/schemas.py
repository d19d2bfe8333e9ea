"""The operator's queue view (``GET /api/v1/admin/queue``) and the answers of its actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec


class QueueJob(msgspec.Struct):
    job_id: str
    function: str | None
    kwargs: dict[str, Any]
    request_id: str | None
    job_try: int | None
    enqueued_at: datetime | None
    due_at: datetime
    waiting_seconds: float  # since it was due (0 for a deferred job)


class FailedJob(msgspec.Struct):
    job_id: str
    function: str
    kwargs: dict[str, Any]
    request_id: str | None
    job_try: int | None
    error: str
    failed_at: datetime
    retry: str  # the action's path (POST)


class QueueCounts(msgspec.Struct):
    queued: int
    in_progress: int
    deferred: int


class QueueActions(msgspec.Struct):
    retry: str
    cancel: str


class QueueView(msgspec.Struct):
    queue: str
    counts: QueueCounts
    oldest_queued_age_seconds: float
    queued: list[QueueJob]
    in_progress: list[QueueJob]
    deferred: list[QueueJob]
    failed_recent: list[FailedJob]
    actions: QueueActions


class QueueJobAction(msgspec.Struct):
    job_id: str
    outcome: Literal["enqueued", "cancelled", "aborting"]
