"""The operations area's public surface: the operator's queue view and actions, the scrape-time gauges,
and the hooks the worker and the sync call (failures, tenants that synced)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import session_scope
from app.db.models import Marketplace
from app.domain.operations import repositories
from app.domain.operations.activity import active_tenants
from app.domain.operations.activity import mark_tenant_synced as mark_tenant_synced
from app.domain.operations.queue import REQUEST_ID_ARG as REQUEST_ID_ARG
from app.domain.operations.queue import FailureLog as FailureLog
from app.domain.operations.queue import JobInfo, QueueInspector
from app.domain.operations.schemas import (
    FailedJob,
    QueueActions,
    QueueCounts,
    QueueJob,
    QueueJobAction,
    QueueView,
)
from app.lib.clock import utcnow
from app.lib.errors import ConflictError, NotFoundError

ADMIN_QUEUE_PATH = "/api/v1/admin/queue"
TOKEN_EXPIRY_WINDOW = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Gauges:
    """What the dashboards read as state (computed at scrape time, cached a few seconds by the worker)."""

    active_tenants: int
    queue_depth: int
    queue_oldest_age_seconds: float
    jobs_in_progress: int
    outbox_backlog: int
    outbox_oldest_age_seconds: float
    tokens_expiring: dict[str, int]


async def collect_gauges(sessionmaker: async_sessionmaker[AsyncSession], redis: ArqRedis, queue_name: str) -> Gauges:
    """Three Redis calls and two indexed statements in one short transaction."""
    stats = await QueueInspector(redis, queue_name).stats()
    tenants = await active_tenants(redis, queue_name)
    now = utcnow()
    async with session_scope(sessionmaker) as session:
        backlog, oldest = await repositories.outbox_backlog(session)
        expiring = await repositories.tokens_expiring(session, now + TOKEN_EXPIRY_WINDOW)
    return Gauges(
        active_tenants=tenants,
        queue_depth=stats.queued,
        queue_oldest_age_seconds=stats.oldest_queued_age_seconds,
        jobs_in_progress=stats.in_progress,
        outbox_backlog=backlog,
        outbox_oldest_age_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        tokens_expiring={m.value: expiring.get(m.value, 0) for m in Marketplace},
    )


class JobNotFoundError(NotFoundError):
    code = "job_not_found"
    title = "No such job"


class JobConflictError(ConflictError):
    code = "job_exists"
    title = "A job with this id is queued or running"


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _job(job: JobInfo, now_ms: int) -> QueueJob:
    kwargs = {k: v for k, v in job.kwargs.items() if k != REQUEST_ID_ARG}
    return QueueJob(
        job_id=job.job_id,
        function=job.function,
        kwargs=kwargs,
        request_id=job.kwargs.get(REQUEST_ID_ARG),
        job_try=job.job_try,
        enqueued_at=_at(job.enqueued_at_ms) if job.enqueued_at_ms is not None else None,
        due_at=_at(job.due_at_ms),
        waiting_seconds=max(0.0, (now_ms - job.due_at_ms) / 1000),
    )


class OperationsService:
    """The operator's view of the job queue; reached only through the operator token guard."""

    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.inspector = QueueInspector(redis, queue_name)

    async def queue(self, limit: int) -> QueueView:
        snap = await self.inspector.snapshot(limit)
        now_ms = int(utcnow().timestamp() * 1000)
        failed = [
            FailedJob(
                job_id=f["job_id"],
                function=f["function"],
                kwargs={k: v for k, v in f.get("kwargs", {}).items() if k != REQUEST_ID_ARG},
                request_id=f.get("kwargs", {}).get(REQUEST_ID_ARG),
                job_try=f.get("job_try"),
                error=f.get("error", ""),
                failed_at=_at(int(f["failed_at_ms"])),
                retry=f"{ADMIN_QUEUE_PATH}/jobs/{f['job_id']}/retry",
            )
            for f in snap.failed
        ]
        return QueueView(
            queue=self.inspector.queue_name,
            counts=QueueCounts(
                queued=snap.stats.queued, in_progress=snap.stats.in_progress, deferred=snap.stats.deferred
            ),
            oldest_queued_age_seconds=round(snap.stats.oldest_queued_age_seconds, 3),
            queued=[_job(j, now_ms) for j in snap.queued],
            in_progress=[_job(j, now_ms) for j in snap.in_progress],
            deferred=[_job(j, now_ms) for j in snap.deferred],
            failed_recent=failed,
            actions=QueueActions(
                retry=f"POST {ADMIN_QUEUE_PATH}/jobs/{{job_id}}/retry — enqueue a failed job again (same id)",
                cancel=f"POST {ADMIN_QUEUE_PATH}/jobs/{{job_id}}/cancel — drop a waiting job, or abort a running one",
            ),
        )

    async def retry(self, job_id: str) -> QueueJobAction:
        outcome = await self.inspector.retry(job_id)
        if outcome == "unknown":
            raise JobNotFoundError("No recent failure has this job id.")
        if outcome == "exists":
            raise JobConflictError("A job with this id is queued or running; nothing was enqueued.")
        return QueueJobAction(job_id=job_id, outcome="enqueued")

    async def cancel(self, job_id: str) -> QueueJobAction:
        outcome = await self.inspector.cancel(job_id)
        if outcome == "missing":
            raise JobNotFoundError("No queued, deferred or running job has this id.")
        return QueueJobAction(job_id=job_id, outcome="cancelled" if outcome == "cancelled" else "aborting")
