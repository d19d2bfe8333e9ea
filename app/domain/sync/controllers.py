"""HTTP endpoints: trigger a sync, list and read sync runs."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter

from app.db.models import SyncRun as SyncRunRow
from app.domain.api import errors_for, write_guard
from app.domain.sync.runs import SyncRunService
from app.domain.sync.schemas import SyncRun, SyncRunAccepted, SyncRunPage


def sync_run_out(run: SyncRunRow) -> SyncRun:
    duration = None
    if run.started_at and run.finished_at:
        duration = round((run.finished_at - run.started_at).total_seconds(), 3)
    return SyncRun(
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
        resume_at=run.resume_at,
        status_reason=run.status_reason,
        waited_seconds=round(float(run.waited_seconds or 0.0), 3),
        resumes=run.resumes or 0,
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
    async def trigger(self, connection_id: uuid.UUID, sync_run_service: SyncRunService) -> SyncRunAccepted:
        result = await sync_run_service.trigger(connection_id)
        assert result.run_id is not None
        return SyncRunAccepted(
            id=result.run_id,
            status=result.run_status,  # type: ignore[arg-type]
            resume_at=result.resume_at,
        )


class SyncRunController(Controller):
    path = "/api/v1/syncs"
    tags = ["syncs"]

    @get("/", operation_id="listSyncs", summary="Sync runs, newest first", responses=errors_for(401, 422))
    async def list_runs(
        self,
        sync_run_service: SyncRunService,
        connection_id: uuid.UUID | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> SyncRunPage:
        page = await sync_run_service.page(connection_id, cursor, limit)
        return SyncRunPage(items=[sync_run_out(r) for r in page.items], next_cursor=page.next_cursor)

    @get("/{run_id:uuid}", operation_id="getSync", summary="One sync run", responses=errors_for(401, 404))
    async def get_run(self, run_id: uuid.UUID, sync_run_service: SyncRunService) -> SyncRun:
        return sync_run_out(await sync_run_service.get(run_id))
