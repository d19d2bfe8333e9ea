"""The sweep that makes every sync run end: runs past their lease whose worker died or whose job is gone.

A running run's lease is renewed by its worker every third of ``sync_lease_s``; a queued or waiting run's
lease covers the wait for its job. Past it (``st_expired_sync_runs``, the one cross-tenant read, a
SECURITY DEFINER function), a *running* run is dead — its worker stopped renewing — and a queued or waiting
run is dead when its job is neither in arq (queued, deferred or in progress) nor still in the outbox, or
when arq holds its job *in progress* while nobody holds the connection's lease: the worker that took the job
died before the sync started (arq would only hand such a job out again after its timeout, ten minutes). A
queued or waiting run whose job is alive gets its lease extended. Dead runs end ``failed`` with
``error_code`` ``abandoned`` through the tenant-scoped repository (its ``sync.failed`` event, the
connection's last outcome), only if the lease is still expired at that moment.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import session_scope
from app.db.models import OutboxMessage
from app.db.outbox import JobQueue
from app.domain.sync.lease import lock_key
from app.domain.sync.repositories import SyncRepository
from app.domain.sync.services import end_run_failed
from app.lib.clock import utcnow

log = structlog.get_logger(__name__)
BATCH = 500
# arq's key prefixes (arq.constants): a job is alive while either key exists.
_IN_PROGRESS = "arq:in-progress:"
_JOB_KEYS = ("arq:job:", _IN_PROGRESS)


async def job_alive(sessionmaker: async_sessionmaker[AsyncSession], redis: Any, job_id: str) -> bool:
    """Is the job queued, deferred or running in arq, or still waiting in the outbox to be enqueued?"""
    if await redis.exists(*(prefix + job_id for prefix in _JOB_KEYS)):
        return True
    async with session_scope(sessionmaker) as s:
        stmt = select(OutboxMessage.id).where(OutboxMessage.job_id == job_id, OutboxMessage.enqueued_at.is_(None))
        return (await s.execute(stmt.limit(1))).first() is not None


async def sweep_expired_runs(
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Any,
    *,
    lease_s: float,
    queue: JobQueue | None = None,
    now: datetime | None = None,
    limit: int = BATCH,
) -> int:
    """End the runs past their lease that nobody runs any more; returns how many it ended."""
    now = now or utcnow()
    async with session_scope(sessionmaker) as s:
        rows = (
            await s.execute(
                text("SELECT tenant_id, id, status, job_id FROM st_expired_sync_runs(:now, :limit)"),
                {"now": now, "limit": limit},
            )
        ).all()
    ended = 0
    for tenant_id, run_id, status, job_id in rows:
        orphaned = False
        if status != "running" and job_id and await job_alive(sessionmaker, redis, job_id):
            orphaned = await _taken_by_a_dead_worker(sessionmaker, redis, tenant_id, run_id, job_id)
            if not orphaned:
                await _extend(sessionmaker, tenant_id, run_id, now + timedelta(seconds=2 * lease_s))
                continue
        if status == "running":
            reason = "The worker running this sync stopped (its lease was not renewed)."
        elif orphaned:
            reason = "The worker that took this sync's job stopped before the sync could start."
        else:
            reason = "This sync's job is gone (its worker died or it ran out of tries) before it could run."
        if await end_run_failed(sessionmaker, queue, tenant_id, run_id, "abandoned", reason, expired_before=now):
            ended += 1
            log.warning("sync.run.abandoned", run_id=str(run_id), tenant_id=str(tenant_id), was=status)
    return ended


async def _taken_by_a_dead_worker(
    sessionmaker: async_sessionmaker[AsyncSession], redis: Any, tenant_id: uuid.UUID, run_id: uuid.UUID, job_id: str
) -> bool:
    """arq holds the job in progress, yet nobody holds the connection's lease: a live job takes the lease at
    once (or hands the run on and ends), so past the run's own lease this is a worker that died."""
    if not await redis.exists(_IN_PROGRESS + job_id):
        return False
    async with session_scope(sessionmaker, tenant_id) as s:
        connection_id = await SyncRepository(s, tenant_id).run_connection(run_id)
    return connection_id is not None and not await redis.exists(lock_key(str(connection_id)))


async def _extend(
    sessionmaker: async_sessionmaker[AsyncSession], tenant_id: uuid.UUID, run_id: uuid.UUID, until: datetime
) -> None:
    async with session_scope(sessionmaker, tenant_id) as s:
        await SyncRepository(s, tenant_id).renew_lease(run_id, until)
