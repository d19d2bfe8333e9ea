"""HTTP endpoints: trigger a sync, list and read sync runs."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter
from sqlalchemy import tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import SyncRun, SyncStatus
from app.db.outbox import add_job
from app.db.repository import TenantRepository
from app.domain.connections.repositories import ConnectionRepository
from app.domain.http import decode_cursor, encode_cursor, errors_for, write_guard
from app.domain.sync.schemas import SyncAccepted, SyncRunOut, SyncRunPage
from app.lib.clock import utcnow
from app.lib.errors import NotFoundError, RateLimitedError
from app.lib.ids import uuid7
from app.lib.tokens import Principal

MANUAL_COOLDOWN = timedelta(seconds=60)


class SyncRunRepository(TenantRepository[SyncRun]):
    model = SyncRun


class SyncCooldownError(RateLimitedError):
    code = "sync_cooldown"
    title = "A sync was started moments ago"


def to_out(run: SyncRun) -> SyncRunOut:
    duration = None
    if run.started_at and run.finished_at:
        duration = round((run.finished_at - run.started_at).total_seconds(), 3)
    return SyncRunOut(
        id=run.id,
        connection_id=run.connection_id,
        trigger=run.trigger,
        status=run.status.value,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        duration_seconds=duration,
        attempts=run.attempts,
        counts=run.counts,
        stages=run.stages,
        error_code=run.error_code,
        error=run.error,
    )


class SyncTriggerController(Controller):
    path = "/api/v1/connections/{connection_id:uuid}/syncs"
    tags = ["syncs"]

    @post(
        "/",
        operation_id="triggerSync",
        summary="Start a sync now (202; one at a time, with a cooldown)",
        guards=[write_guard],
        status_code=202,
        responses=errors_for(401, 403, 404),
    )
    async def trigger(self, connection_id: uuid.UUID, db_session: AsyncSession, principal: Principal) -> SyncAccepted:
        tid = principal.tenant_id
        if await ConnectionRepository(db_session, tid).get(connection_id) is None:
            raise NotFoundError("No such connection.")
        runs = SyncRunRepository(db_session, tid)
        active = await runs.list(
            SyncRun.connection_id == connection_id,
            SyncRun.status.in_([SyncStatus.QUEUED, SyncStatus.RUNNING]),
            order_by=SyncRun.created_at.desc(),
            limit=1,
        )
        if active:
            return SyncAccepted(id=active[0].id, status=active[0].status.value)
        recent = await runs.list(
            SyncRun.connection_id == connection_id,
            SyncRun.trigger == "manual",
            SyncRun.created_at > utcnow() - MANUAL_COOLDOWN,
            limit=1,
        )
        if recent:
            wait = MANUAL_COOLDOWN - (utcnow() - recent[0].created_at)
            seconds = max(1, int(wait.total_seconds()) + 1)
            raise SyncCooldownError(
                f"A sync of this connection finished moments ago; try again in {seconds} s.",
                headers={"Retry-After": str(seconds)},
            )
        run = runs.add(
            SyncRun(
                id=uuid7(),
                connection_id=connection_id,
                trigger="manual",
                status=SyncStatus.QUEUED,
                counts={},
                stages={},
            )
        )
        job_id = f"sync:{connection_id}:manual:{run.id}"
        run.job_id = job_id
        add_job(
            db_session,
            "sync.connection",
            job_id,
            tenant_id=tid,
            connection_id=str(connection_id),
            trigger="manual",
            run_id=str(run.id),
        )
        return SyncAccepted(id=run.id, status="queued")


class SyncRunController(Controller):
    path = "/api/v1/syncs"
    tags = ["syncs"]

    @get("/", operation_id="listSyncs", summary="Sync runs, newest first", responses=errors_for(401, 422))
    async def list_runs(
        self,
        db_session: AsyncSession,
        principal: Principal,
        connection_id: uuid.UUID | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> SyncRunPage:
        repo = SyncRunRepository(db_session, principal.tenant_id)
        stmt = repo.select().order_by(SyncRun.created_at.desc(), SyncRun.id.desc()).limit(limit + 1)
        if connection_id is not None:
            stmt = stmt.where(SyncRun.connection_id == connection_id)
        after = decode_cursor(cursor, datetime, uuid.UUID)
        if after is not None:
            stmt = stmt.where(tuple_(SyncRun.created_at, SyncRun.id) < tuple_(*after))
        rows = list((await db_session.execute(stmt)).scalars().all())
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
        return SyncRunPage(items=[to_out(r) for r in rows], next_cursor=next_cursor)

    @get("/{run_id:uuid}", operation_id="getSync", summary="One sync run", responses=errors_for(401, 404))
    async def get_run(self, run_id: uuid.UUID, db_session: AsyncSession, principal: Principal) -> SyncRunOut:
        run = await SyncRunRepository(db_session, principal.tenant_id).get(run_id)
        if run is None:
            raise NotFoundError("No such sync run.")
        return to_out(run)
