"""Manual sync requests: the one path the API and the Telegram `/sync` command both take."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Connection, ConnectionStatus, SyncRun, SyncStatus
from app.db.outbox import add_job
from app.domain.billing.services import check_manual_sync
from app.domain.sync.repositories import SyncRunRepository
from app.lib.clock import utcnow
from app.lib.errors import AppError
from app.lib.ids import uuid7

MANUAL_COOLDOWN = timedelta(seconds=60)


@dataclass(frozen=True)
class SyncTrigger:
    connection_id: uuid.UUID
    name: str
    status: str  # queued | already_running | cooldown | invalid | refused (by the plan: see ``refusal``)
    run_id: uuid.UUID | None = None
    run_status: str | None = None
    retry_after: int | None = None
    refusal: AppError | None = None


async def request_manual_sync(
    session: AsyncSession, tenant_id: uuid.UUID, conn: Connection, *, billing_enabled: bool = False
) -> SyncTrigger:
    """Reuse a queued or running run; honour the cooldown and the plan (read-only, connection limit, the
    plan's interval between manual syncs); else create a run and its outbox job (enqueued only if the
    caller's transaction commits)."""
    if conn.status in (ConnectionStatus.INVALID, ConnectionStatus.DISABLED):
        return SyncTrigger(conn.id, conn.name, "invalid")
    runs = SyncRunRepository(session, tenant_id)
    active = await runs.list(
        SyncRun.connection_id == conn.id,
        SyncRun.status.in_([SyncStatus.QUEUED, SyncStatus.RUNNING]),
        order_by=SyncRun.created_at.desc(),
        limit=1,
    )
    if active:
        return SyncTrigger(conn.id, conn.name, "already_running", active[0].id, active[0].status.value)
    now = utcnow()
    recent = await runs.list(
        SyncRun.connection_id == conn.id,
        SyncRun.trigger == "manual",
        SyncRun.created_at > now - MANUAL_COOLDOWN,
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
        SyncRun(id=uuid7(), connection_id=conn.id, trigger="manual", status=SyncStatus.QUEUED, counts={}, stages={})
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
