"""The sweep that makes every sync run end: runs past their lease whose worker died or whose job is gone are
resumed under a fresh job, a bounded number of times, then ended.

A running run's lease is renewed by its worker every third of ``sync_lease_s``; a queued or waiting run's
lease covers the wait for its job. Past it (``st_expired_sync_runs``, the one cross-tenant read, a
SECURITY DEFINER function), a *running* run is dead — its worker stopped renewing — and a queued or waiting
run is dead when its job is neither in arq (queued, deferred or in progress) nor still in the outbox, or
when arq holds its job *in progress* while nobody holds the connection's lease: the worker that took the job
died before the sync started (arq would only hand such a job out again after its timeout, ten minutes). A
queued or waiting run whose job is alive gets its lease extended.

A dead run is *resumed* (issue 13 §3, "no lost job"): back to ``queued`` under a fresh job (the run's next
hop, ``<first job id>+<n>``, through the outbox in the same transaction), the same run id — so what a waiting
run had fetched (its stash) is reused, its history points stay unique per run, and its events keep their
keys. The run's ``resumes`` counts it and ``status_reason`` says why. The old job, should arq deliver it
again after its timeout, finds the run belongs to the new job and leaves it (``SyncService.run``). A run
already resumed ``max_resumes`` times (a sync that kills its worker every time) ends ``failed`` with
``error_code`` ``abandoned`` through the tenant-scoped repository (its ``sync.failed`` event, the
connection's last outcome). Both happen only if the lease is still expired at that moment (the run's row is
locked: a job starting it and the sweep never cross).
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
from app.db.outbox import JobQueue, add_job, unit_of_work
from app.domain.sync.lease import lock_key
from app.domain.sync.repositories import SyncRepository
from app.domain.sync.services import SYNC_JOB, end_run_failed, hop_of, next_job_id
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
    max_resumes: int,
    queue: JobQueue | None = None,
    now: datetime | None = None,
    limit: int = BATCH,
) -> int:
    """Resume (or, past ``max_resumes``, end) the runs past their lease that nobody runs any more; returns
    how many it resumed or ended."""
    now = now or utcnow()
    async with session_scope(sessionmaker) as s:
        rows = (
            await s.execute(
                text("SELECT tenant_id, id, status, job_id FROM st_expired_sync_runs(:now, :limit)"),
                {"now": now, "limit": limit},
            )
        ).all()
    handled = 0
    for tenant_id, run_id, status, job_id in rows:
        orphaned = False
        if status != "running" and job_id and await job_alive(sessionmaker, redis, job_id):
            orphaned = await _taken_by_a_dead_worker(sessionmaker, redis, tenant_id, run_id, job_id)
            if not orphaned:
                await _extend(sessionmaker, tenant_id, run_id, now + timedelta(seconds=2 * lease_s))
                continue
        if status == "running":
            reason = "its lease was not renewed while it ran"
        elif orphaned:
            reason = "the worker that took its job stopped before the sync could start"
        else:
            reason = "its job is gone (its worker died, or it ran out of tries) before it could run"
        lease_until = now + timedelta(seconds=2 * lease_s)
        outcome = await resume_or_end(
            sessionmaker, queue, tenant_id, run_id, reason, max_resumes=max_resumes, now=now, lease_until=lease_until
        )
        if outcome is not None:
            handled += 1
            log.warning(f"sync.run.{outcome}", run_id=str(run_id), tenant_id=str(tenant_id), was=status, why=reason)
    return handled


async def resume_or_end(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: JobQueue | None,
    tenant_id: uuid.UUID,
    run_id: uuid.UUID,
    reason: str,
    *,
    max_resumes: int,
    now: datetime,
    lease_until: datetime,
) -> str | None:
    """A dead run: ``resumed`` under a fresh job (its outbox row written with the run's change), or
    ``abandoned`` once it was resumed ``max_resumes`` times; None when it ended or was renewed meanwhile."""
    async with unit_of_work(sessionmaker, queue, tenant_id) as s:
        repo = SyncRepository(s, tenant_id)
        run = await repo.expired_run(run_id, now)
        if run is None:
            return None
        if run.resumes < max_resumes:
            first = run.job_id or f"sync:{run.connection_id}:run:{run_id}"
            hop = hop_of(first)
            job_id = next_job_id(first, hop)
            why = f"Resumed after its worker stopped ({run.resumes + 1} of {max_resumes}): {reason}."
            await repo.resume_run(run_id, job_id, why, lease_until)
            add_job(
                s,
                SYNC_JOB,
                job_id,
                tenant_id=tenant_id,
                connection_id=str(run.connection_id),
                trigger=run.trigger,
                run_id=str(run_id),
                hop=hop + 1,
            )
            return "resumed"
    resumed = f" after {max_resumes} resume{'s' if max_resumes != 1 else ''}" if max_resumes else ""
    error = f"This sync stopped without ending{resumed}: {reason}."
    if await end_run_failed(sessionmaker, queue, tenant_id, run_id, "abandoned", error, expired_before=now):
        return "abandoned"
    return None


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
