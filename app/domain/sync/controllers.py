"""HTTP endpoints: trigger a sync, list and read sync runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter
from sqlalchemy import tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import SyncRun
from app.domain.api import decode_cursor, encode_cursor, errors_for, write_guard
from app.domain.connections.repositories import ConnectionRepository
from app.domain.sync.schemas import SyncAccepted, SyncRunOut, SyncRunPage
from app.domain.sync.triggers import SyncRunRepository, request_manual_sync
from app.lib.errors import ConflictError, NotFoundError, RateLimitedError
from app.lib.tokens import Principal


class SyncCooldownError(RateLimitedError):
    code = "sync_cooldown"
    title = "A sync was started moments ago"


class ConnectionInvalidError(ConflictError):
    code = "connection_invalid"
    title = "The marketplace refuses this connection's credentials"


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
        conn = await ConnectionRepository(db_session, principal.tenant_id).get(connection_id)
        if conn is None:
            raise NotFoundError("No such connection.")
        result = await request_manual_sync(db_session, principal.tenant_id, conn)
        if result.status == "invalid":
            raise ConnectionInvalidError(
                f"The connection is {conn.status.value}: {conn.status_reason or 'check its credentials'}."
            )
        if result.status == "cooldown":
            raise SyncCooldownError(
                f"A sync of this connection finished moments ago; try again in {result.retry_after} s.",
                headers={"Retry-After": str(result.retry_after)},
            )
        assert result.run_id is not None
        return SyncAccepted(id=result.run_id, status=result.run_status)  # type: ignore[arg-type]


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
