"""The sync-runs API's use-cases: start a manual sync, list and read runs.

Kept apart from the sync pipeline (``services.py``, the worker's side); ``SyncRunListing`` is the one query
the API adds and belongs with the sync's repository.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import SyncRun
from app.db.repository import TenantRepository
from app.domain.connections.services import ConnectionRepository
from app.domain.sync.triggers import SyncRunRepository, SyncTrigger, request_manual_sync
from app.lib.errors import ConflictError, NotFoundError, RateLimitedError
from app.lib.pagination import Page, paginate


class SyncCooldownError(RateLimitedError):
    code = "sync_cooldown"
    title = "A sync was started moments ago"


class ConnectionInvalidError(ConflictError):
    code = "connection_invalid"
    title = "The marketplace refuses this connection's credentials"


class SyncRunListing(TenantRepository[SyncRun]):
    model = SyncRun

    async def page(
        self, connection_id: uuid.UUID | None, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[SyncRun]:
        """Runs newest first (by creation, then id), strictly after the key ``after``."""
        stmt = self.select().order_by(SyncRun.created_at.desc(), SyncRun.id.desc()).limit(limit)
        if connection_id is not None:
            stmt = stmt.where(SyncRun.connection_id == connection_id)
        if after is not None:
            stmt = stmt.where(tuple_(SyncRun.created_at, SyncRun.id) < tuple_(*after))
        return list((await self.session.execute(stmt)).scalars().all())


class SyncRunService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, *, billing_enabled: bool = False) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.billing_enabled = billing_enabled

    async def trigger(self, connection_id: uuid.UUID) -> SyncTrigger:
        """Queue a manual sync (or reuse the queued or running one); refuse invalid connections and the
        cooldown after a manual sync."""
        conn = await ConnectionRepository(self.session, self.tenant_id).get(connection_id)
        if conn is None:
            raise NotFoundError("No such connection.")
        result = await request_manual_sync(self.session, self.tenant_id, conn, billing_enabled=self.billing_enabled)
        if result.refusal is not None:
            raise result.refusal  # the plan's answer (402 read-only, 403 plan-limit, 429 sync-interval)
        if result.status == "invalid":
            raise ConnectionInvalidError(
                f"The connection is {conn.status.value}: {conn.status_reason or 'check its credentials'}."
            )
        if result.status == "cooldown":
            raise SyncCooldownError(
                f"A sync of this connection finished moments ago; try again in {result.retry_after} s.",
                headers={"Retry-After": str(result.retry_after)},
            )
        return result

    async def page(self, connection_id: uuid.UUID | None, cursor: str | None, limit: int) -> Page[SyncRun]:
        return await paginate(
            lambda after, n: SyncRunListing(self.session, self.tenant_id).page(connection_id, after, n),
            cursor=cursor,
            limit=limit,
            key=lambda run: (run.created_at, run.id),
            types=(datetime, uuid.UUID),
        )

    async def get(self, run_id: uuid.UUID) -> SyncRun:
        run = await SyncRunRepository(self.session, self.tenant_id).get(run_id)
        if run is None:
            raise NotFoundError("No such sync run.")
        return run
