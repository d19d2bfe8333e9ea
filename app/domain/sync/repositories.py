"""Every SQL statement of the sync outside the snapshot writer: its runs, the connection's sync state, and what
the fetch must know beforehand. Scoped to one tenant like every tenant repository (row-level security is
the second wall)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Connection, ConnectionStatus, Product, SyncRun, SyncStatus, Variant, Warehouse
from app.db.repository import TenantRepository
from app.lib.clock import utcnow


class SyncRunRepository(TenantRepository[SyncRun]):
    model = SyncRun


@dataclass(frozen=True, slots=True)
class RunState:
    """What a job must know of its run before it starts it."""

    status: SyncStatus
    finished: bool
    waited_seconds: float
    job_id: str | None


@dataclass(frozen=True, slots=True)
class ExpiredRun:
    """An unfinished run past its lease, as the sweep resumes it."""

    connection_id: uuid.UUID
    trigger: str
    job_id: str | None
    resumes: int


@dataclass(frozen=True, slots=True)
class FinishedRun:
    connection_id: uuid.UUID
    started_at: datetime | None  # None when the run ended before it started (e.g. an invalid connection)
    finished_at: datetime

    @property
    def seconds(self) -> float | None:
        return (self.finished_at - self.started_at).total_seconds() if self.started_at else None


class SyncRepository:
    """The sync's runs and its connection's sync state, for one tenant."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    # -- the connection ------------------------------------------------------------------------------------

    async def connection(self, connection_id: uuid.UUID) -> Connection | None:
        stmt = select(Connection).where(Connection.id == connection_id, Connection.tenant_id == self.tenant_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def known_variants(self, connection_id: uuid.UUID) -> list[tuple[str, str]]:
        """(product, variant) marketplace ids already stored for the connection."""
        stmt = (
            select(Product.external_id, Variant.external_id)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.connection_id == connection_id, Variant.tenant_id == self.tenant_id)
        )
        return [(p, v) for p, v in (await self.session.execute(stmt)).all()]

    async def known_warehouses(self, connection_id: uuid.UUID) -> dict[str, str]:
        """Warehouse name → marketplace id, for matching order lines (which carry only a name)."""
        stmt = select(Warehouse.external_id, Warehouse.name).where(
            Warehouse.connection_id == connection_id, Warehouse.tenant_id == self.tenant_id
        )
        return {name: ext for ext, name in (await self.session.execute(stmt)).all()}

    async def record_synced(
        self, connection_id: uuid.UUID, status: SyncStatus, succeeded_at: datetime, cursor: dict[str, Any] | None
    ) -> None:
        """A run wrote its snapshot: move the cursors; only a complete run moves ``last_success_at`` and makes
        the connection active again."""
        values: dict[str, Any] = {
            "last_sync_at": utcnow(),
            "sync_cursor": cursor,
            "last_sync_status": status.value,
            "last_outcome": status.value,
        }
        if status is SyncStatus.SUCCEEDED:
            values["status"] = ConnectionStatus.ACTIVE
            values["last_success_at"] = succeeded_at
        await self._update_connection(connection_id, values)

    async def record_attempt(self, connection_id: uuid.UUID) -> None:
        await self._update_connection(connection_id, {"last_attempt_at": utcnow()})

    async def record_failed(self, connection_id: uuid.UUID, error_code: str = "failed") -> None:
        """A run ended failed: ``last_outcome`` is its error code (``last_success_at`` stays where it was)."""
        await self._update_connection(
            connection_id,
            {"last_sync_at": utcnow(), "last_sync_status": "failed", "last_outcome": error_code[:40]},
        )

    async def record_refused(self, connection_id: uuid.UUID, reason: str) -> None:
        """The marketplace refused the credentials (401/403): the connection is invalid until they are replaced."""
        now = utcnow()
        await self._update_connection(
            connection_id,
            {
                "status": ConnectionStatus.INVALID,
                "status_reason": reason,
                "last_checked_at": now,
                "last_sync_at": now,
                "last_sync_status": "failed",
                "last_outcome": "marketplace_auth",
            },
        )

    async def _update_connection(self, connection_id: uuid.UUID, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(Connection)
            .where(Connection.id == connection_id, Connection.tenant_id == self.tenant_id)
            .values(**values)
        )

    # -- runs ----------------------------------------------------------------------------------------------

    async def open_run(
        self,
        run_id: uuid.UUID,
        connection_id: uuid.UUID,
        trigger: str,
        job_id: str | None,
        lease_until: datetime | None = None,
    ) -> None:
        """Record the run as queued unless it exists (a manual run is created by its request; a rerun of a
        job finds its run)."""
        await self.session.execute(
            insert(SyncRun)
            .values(
                id=run_id,
                tenant_id=self.tenant_id,
                connection_id=connection_id,
                trigger=trigger,
                status=SyncStatus.QUEUED,
                job_id=job_id,
                counts={},
                stages={},
                lease_expires_at=lease_until or utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )

    async def run_state(self, run_id: uuid.UUID, *, lock: bool = False) -> RunState | None:
        """``lock``: hold the run's row until the transaction ends (the job's start against the sweep's resume)."""
        stmt = select(SyncRun.status, SyncRun.finished_at, SyncRun.waited_seconds, SyncRun.job_id).where(
            SyncRun.id == run_id, SyncRun.tenant_id == self.tenant_id
        )
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).one_or_none()
        if row is None:
            return None
        return RunState(row.status, row.finished_at is not None, float(row.waited_seconds or 0.0), row.job_id)

    async def run_connection(self, run_id: uuid.UUID) -> uuid.UUID | None:
        """The connection a run of this tenant syncs (None: no such run)."""
        stmt = select(SyncRun.connection_id).where(SyncRun.id == run_id, SyncRun.tenant_id == self.tenant_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def start_run(self, run_id: uuid.UUID, lease_until: datetime) -> None:
        await self._update_run(
            run_id,
            {
                "status": SyncStatus.RUNNING,
                "started_at": utcnow(),
                "attempts": SyncRun.attempts + 1,
                "lease_expires_at": lease_until,
                "resume_at": None,
                "status_reason": None,
            },
        )

    async def renew_lease(self, run_id: uuid.UUID, lease_until: datetime) -> None:
        """The worker still runs this run (its heartbeat)."""
        await self.session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id, SyncRun.tenant_id == self.tenant_id, SyncRun.finished_at.is_(None))
            .values(lease_expires_at=lease_until)
            .execution_options(synchronize_session=False)
        )

    async def hold_run(
        self, run_id: uuid.UUID, job_id: str, reason: str, lease_until: datetime, *, owner: str | None = None
    ) -> bool:
        """Keep a run that is not running ``queued`` under its next job (the connection is busy); False when
        the run ended or is running meanwhile, or (with ``owner``, the job asking) belongs to another job."""
        where = [
            SyncRun.id == run_id,
            SyncRun.tenant_id == self.tenant_id,
            SyncRun.finished_at.is_(None),
            SyncRun.status != SyncStatus.RUNNING,
        ]
        if owner is not None:
            where.append(or_(SyncRun.job_id.is_(None), SyncRun.job_id == owner))
        stmt = (
            update(SyncRun)
            .where(*where)
            .values(status=SyncStatus.QUEUED, job_id=job_id, status_reason=reason, lease_expires_at=lease_until)
            .returning(SyncRun.id)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(stmt)).one_or_none() is not None

    async def expired_run(self, run_id: uuid.UUID, expired_before: datetime) -> ExpiredRun | None:
        """The run, locked until the transaction ends, if it is unfinished and its lease expired before
        ``expired_before`` (None otherwise: it ended, or its worker renewed it meanwhile)."""
        stmt = (
            select(SyncRun.connection_id, SyncRun.trigger, SyncRun.job_id, SyncRun.resumes)
            .where(
                SyncRun.id == run_id,
                SyncRun.tenant_id == self.tenant_id,
                SyncRun.finished_at.is_(None),
                SyncRun.lease_expires_at < expired_before,
            )
            .with_for_update()
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return ExpiredRun(row.connection_id, row.trigger, row.job_id, row.resumes) if row is not None else None

    async def resume_run(self, run_id: uuid.UUID, job_id: str, reason: str, lease_until: datetime) -> None:
        """Its worker stopped: the run goes back to ``queued`` under the fresh job ``job_id`` (one resume more)."""
        await self._update_run(
            run_id,
            {
                "status": SyncStatus.QUEUED,
                "job_id": job_id,
                "resumes": SyncRun.resumes + 1,
                "status_reason": reason,
                "resume_at": None,
                "lease_expires_at": lease_until,
            },
        )

    async def requeue_run(
        self,
        run_id: uuid.UUID,
        reason: str,
        stages: dict[str, Any] | None,
        lease_until: datetime | None = None,
        resume_at: datetime | None = None,
    ) -> None:
        """Back to queued (the job runs again later), or ``waiting`` until ``resume_at`` when the job is
        deferred that long; ``stages`` None keeps the stored records."""
        values: dict[str, Any] = {
            "status": SyncStatus.QUEUED if resume_at is None else SyncStatus.WAITING,
            "error": reason,
            "status_reason": reason,
            "resume_at": resume_at,
        }
        if stages is not None:
            values["stages"] = stages
        if lease_until is not None:
            values["lease_expires_at"] = lease_until
        await self._update_run(run_id, values)

    async def wait_run(
        self,
        run_id: uuid.UUID,
        *,
        resume_at: datetime,
        reason: str,
        waited_seconds: float,
        stages: dict[str, Any],
        job_id: str,
        lease_until: datetime,
    ) -> None:
        """The run waits on a marketplace budget until ``resume_at``; its next job is ``job_id``."""
        await self._update_run(
            run_id,
            {
                "status": SyncStatus.WAITING,
                "resume_at": resume_at,
                "status_reason": reason,
                "waited_seconds": waited_seconds,
                "stages": stages,
                "job_id": job_id,
                "lease_expires_at": lease_until,
            },
        )

    async def finish_run(
        self,
        run_id: uuid.UUID,
        status: SyncStatus,
        *,
        counts: dict[str, Any],
        stages: dict[str, Any] | None,
        error_code: str | None,
        error: str | None,
        waited_seconds: float | None = None,
        expired_before: datetime | None = None,
    ) -> FinishedRun | None:
        """Record how the run ended; returns its connection and timings (None when the run does not exist, or
        with ``expired_before``, when it is not an unfinished run whose lease expired before that moment)."""
        finished_at = utcnow()
        values: dict[str, Any] = {
            "status": status,
            "finished_at": finished_at,
            "counts": counts,
            "error_code": error_code,
            "error": error,
            "resume_at": None,
            "status_reason": None,
            "lease_expires_at": None,
        }
        if stages is not None:  # None keeps the stored records (the sweep knows none of its own)
            values["stages"] = stages
        if waited_seconds is not None:
            values["waited_seconds"] = waited_seconds
        where = [SyncRun.id == run_id, SyncRun.tenant_id == self.tenant_id]
        if expired_before is not None:
            where += [SyncRun.finished_at.is_(None), SyncRun.lease_expires_at < expired_before]
        stmt = (
            update(SyncRun)
            .where(*where)
            .values(**values)
            .returning(SyncRun.connection_id, SyncRun.started_at)
            .execution_options(synchronize_session=False)
        )
        row = (await self.session.execute(stmt)).one_or_none()
        return FinishedRun(row.connection_id, row.started_at, finished_at) if row is not None else None

    async def _update_run(self, run_id: uuid.UUID, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(SyncRun)
            .where(SyncRun.id == run_id, SyncRun.tenant_id == self.tenant_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
