"""Manual sync requests: the one path the API and the Telegram `/sync` command both take."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Connection, ConnectionStatus, SyncRun, SyncStatus
from app.db.outbox import add_job
from app.domain.billing.services import check_manual_sync
from app.domain.sync.pipeline import record_sync_event
from app.domain.sync.repositories import SyncRepository, SyncRunRepository
from app.lib.clock import utcnow
from app.lib.errors import AppError
from app.lib.ids import uuid7

MANUAL_COOLDOWN = timedelta(seconds=60)
# A new manual run's lease: the longest sync lease (60 s). The sweep extends it while the job waits in the
# outbox or in arq's queue, so it need not cover the wait; kept short, a run whose job a worker took and died
# with (arq's in-progress mark, nobody holding the connection's lease) is resumed within a minute of the crash.
QUEUED_LEASE = timedelta(seconds=60)
ALIVE = (SyncStatus.QUEUED, SyncStatus.RUNNING, SyncStatus.WAITING)


@dataclass(frozen=True)
class SyncTrigger:
    connection_id: uuid.UUID
    name: str
    status: str  # queued | already_running | cooldown | invalid | refused (by the plan: see ``refusal``)
    run_id: uuid.UUID | None = None
    run_status: str | None = None
    resume_at: datetime | None = None
    retry_after: int | None = None
    refusal: AppError | None = None


async def request_manual_sync(
    session: AsyncSession, tenant_id: uuid.UUID, conn: Connection, *, billing_enabled: bool = False
) -> SyncTrigger:
    """Reuse a live queued, waiting or running run; honour the cooldown and the plan (read-only, connection
    limit, the plan's interval between manual syncs); else create a run and its outbox job (enqueued only if
    the caller's transaction commits). A run past its lease is not alive: it is ended ``abandoned`` here
    and never answered (the sweep would resume it; the user asking now gets a fresh run at once)."""
    if conn.status in (ConnectionStatus.INVALID, ConnectionStatus.DISABLED):
        return SyncTrigger(conn.id, conn.name, "invalid")
    runs = SyncRunRepository(session, tenant_id)
    now = utcnow()
    active = await runs.list(
        SyncRun.connection_id == conn.id,
        SyncRun.status.in_(ALIVE),
        SyncRun.finished_at.is_(None),
        order_by=SyncRun.created_at.desc(),
    )
    for run in active:
        if run.lease_expires_at is not None and run.lease_expires_at < now:
            await SyncRepository(session, tenant_id).finish_run(
                run.id,
                SyncStatus.FAILED,
                counts={},
                stages=None,
                error_code="abandoned",
                error="This sync stopped without ending (its lease expired); a new one was started.",
                expired_before=now,
            )
            record_sync_event(session, tenant_id, conn.id, run.id, "failed", {}, "abandoned")
            await SyncRepository(session, tenant_id).record_failed(conn.id, "abandoned")
            continue
        return SyncTrigger(conn.id, conn.name, "already_running", run.id, run.status.value, resume_at=run.resume_at)
    recent = await runs.list(
        SyncRun.connection_id == conn.id,
        SyncRun.trigger == "manual",
        SyncRun.created_at > now - MANUAL_COOLDOWN,
        SyncRun.error_code.is_distinct_from("abandoned"),  # a run that died does not hold the next one back
        limit=1,
    )
    if recent:
        wait = MANUAL_COOLDOWN - (now - recent[0].created_at)
        return SyncTrigger(conn.id, conn.name, "cooldown", retry_after=max(1, int(wait.total_seconds()) + 1))
    last_manual = await runs.list(
        SyncRun.connection_id == conn.id,
        SyncRun.trigger == "manual",
        SyncRun.status != SyncStatus.FAILED,
        order_by=SyncRun.created_at.desc(),
        limit=1,
    )
    try:
        await check_manual_sync(
            session,
            tenant_id,
            conn.id,
            last_manual[0].created_at if last_manual else None,
            billing_enabled=billing_enabled,
            now=now,
        )
    except AppError as refusal:
        return SyncTrigger(conn.id, conn.name, "refused", refusal=refusal)
    run = runs.add(
        SyncRun(
            id=uuid7(),
            connection_id=conn.id,
            trigger="manual",
            status=SyncStatus.QUEUED,
            counts={},
            stages={},
            lease_expires_at=now + QUEUED_LEASE,
        )
    )
    run.job_id = f"sync:{conn.id}:manual:{run.id}"
    add_job(
        session,
        "sync.connection",
        run.job_id,
        tenant_id=tenant_id,
        connection_id=str(conn.id),
        trigger="manual",
        run_id=str(run.id),
    )
    return SyncTrigger(conn.id, conn.name, "queued", run.id, "queued")
