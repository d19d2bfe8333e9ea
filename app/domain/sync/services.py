"""One sync of one connection: start the run, run the pipeline's stages (pipeline.py), record how it ended."""

from __future__ import annotations

import time
import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import session_scope
from app.db.models import ConnectionStatus, SyncStatus
from app.db.outbox import JobQueue, unit_of_work
from app.domain.connections.services import MarketplaceGateway, decrypt_credentials
from app.domain.events.services import record_event
from app.domain.sync.pipeline import (
    EvaluateStage,
    FetchStage,
    NormalizeStage,
    PublishStage,
    RunOutcome,
    SyncTarget,
    WriteStage,
    outcome_of,
    record_sync_event,
)
from app.domain.sync.records import StageLog
from app.domain.sync.repositories import FinishedRun, SyncRepository

# The manual-sync path the API and the Telegram /sync command share (other areas reach it through here).
from app.domain.sync.triggers import SyncTrigger as SyncTrigger
from app.domain.sync.triggers import request_manual_sync as request_manual_sync
from app.integrations.marketplace import MarketplaceAuthError, MarketplaceRateLimited
from app.lib.clock import utcnow
from app.lib.crypto import CredentialCipher
from app.observability.metrics import instruments, record_sync_run

log = structlog.get_logger(__name__)
RUN_NAMESPACE = uuid.UUID("2b0f7a3c-9c1e-4d55-8a0e-6f1c3b2d4e5f")


class SyncRescheduled(Exception):
    """The marketplace asked us to wait (429) or is briefly down: run again after ``defer`` seconds."""

    def __init__(self, defer: float, reason: str) -> None:
        super().__init__(reason)
        self.defer = defer
        self.reason = reason


def run_id_for(job_id: str) -> uuid.UUID:
    """Scheduled runs get their id from the job id, so a re-run of the same job records the same run."""
    return uuid.uuid5(RUN_NAMESPACE, job_id)


class SyncService:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        gateway: MarketplaceGateway,
        cipher: CredentialCipher,
        queue: JobQueue | None = None,
        *,
        billing_enabled: bool = False,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.gateway = gateway
        self.cipher = cipher
        self.queue = queue
        self.billing_enabled = billing_enabled

    async def run(
        self,
        tenant_id: uuid.UUID,
        connection_id: uuid.UUID,
        run_id: uuid.UUID,
        trigger: str,
        job_id: str | None,
        stages: StageLog | None = None,
    ) -> SyncStatus | None:
        """Sync the connection once; ``stages`` (the caller's, so it can record a failure that escapes) is
        filled with a record per step. None when the connection is gone."""
        started = time.perf_counter()
        stages = StageLog() if stages is None else stages
        async with session_scope(self.sessionmaker, tenant_id) as s:
            repo = SyncRepository(s, tenant_id)
            conn = await repo.connection(connection_id)
            if conn is None:
                return None  # deleted since it was queued
            await repo.open_run(run_id, connection_id, trigger, job_id)
            if conn.status in (ConnectionStatus.INVALID, ConnectionStatus.DISABLED):
                reason = f"The connection is {conn.status.value}: {conn.status_reason or ''}".strip()
                await repo.finish_run(
                    run_id, SyncStatus.FAILED, counts={}, stages={}, error_code="connection_invalid", error=reason
                )
                record_sync_run(conn.marketplace.value, "failed", "connection_invalid", None)
                return SyncStatus.FAILED
            await repo.start_run(run_id)
            target = SyncTarget(
                tenant_id=tenant_id,
                connection_id=connection_id,
                run_id=run_id,
                marketplace=conn.marketplace.value,
                credentials=decrypt_credentials(self.cipher, conn.credentials_encrypted),
                cursor=dict(conn.sync_cursor or {}),
                variants=await repo.known_variants(connection_id),
                warehouses=await repo.known_warehouses(connection_id),
            )

        now = utcnow()
        try:
            snapshot = await FetchStage(self.gateway).run(target, now, stages)
        except MarketplaceAuthError as exc:
            await self._refused(target, exc, stages)
            record_sync_run(target.marketplace, "failed", "marketplace_auth", time.perf_counter() - started)
            return SyncStatus.FAILED
        except MarketplaceRateLimited as exc:
            await self.requeue(tenant_id, run_id, f"rate limited by the marketplace ({exc})", stages)
            raise SyncRescheduled(exc.retry_after, "marketplace rate limit") from exc
        NormalizeStage().run(snapshot, target, stages)

        async with unit_of_work(self.sessionmaker, self.queue, tenant_id) as s:
            repo = SyncRepository(s, tenant_id)
            written = await WriteStage(billing_enabled=self.billing_enabled).run(s, target, snapshot, now, stages)
            await EvaluateStage().run(s, target, written, stages)
            await repo.record_synced(connection_id, written.status, now, written.cursor)
            outcome = outcome_of(written, snapshot)
            PublishStage().run(s, target, outcome, stages)
            await self._finish(repo, run_id, outcome, stages)
        counts = written.counts
        instruments().rows_upserted.add(counts.changes + counts.zeroed)
        instruments().history_points.add(counts.history_points)
        record_sync_run(target.marketplace, outcome.status.value, outcome.error_code, time.perf_counter() - started)
        log.info("sync.run.finished", connection_id=str(connection_id), status=outcome.status.value, **outcome.counts)
        return outcome.status

    async def _refused(self, target: SyncTarget, exc: MarketplaceAuthError, stages: StageLog) -> None:
        """401/403: the connection is invalid until its credentials are replaced; its owner is told."""
        async with unit_of_work(self.sessionmaker, self.queue, target.tenant_id) as s:
            repo = SyncRepository(s, target.tenant_id)
            await repo.record_refused(target.connection_id, f"{exc.status}: {exc}")
            record_event(
                s,
                target.tenant_id,
                "connection.invalid",
                {
                    "connection_id": str(target.connection_id),
                    "marketplace": target.marketplace,
                    "status": exc.status,
                    "reason": str(exc)[:500],
                },
                key=f"connection.invalid:{target.connection_id}:{target.run_id}",
            )
            outcome = RunOutcome(SyncStatus.FAILED, {}, "marketplace_auth", str(exc))
            PublishStage().run(s, target, outcome, stages)
            await self._finish(repo, target.run_id, outcome, stages)

    async def requeue(
        self, tenant_id: uuid.UUID, run_id: uuid.UUID, reason: str, stages: StageLog | None = None
    ) -> None:
        """Put the run back to ``queued`` while its job waits to run again (``stages`` None keeps the stored
        records)."""
        async with session_scope(self.sessionmaker, tenant_id) as s:
            await SyncRepository(s, tenant_id).requeue_run(
                run_id, reason, stages.to_json() if stages is not None else None
            )

    async def fail(
        self, tenant_id: uuid.UUID, run_id: uuid.UUID, code: str, error: str, stages: StageLog | None = None
    ) -> None:
        """End the run ``failed`` (the job gave up or broke): its event, the connection's last status, and the
        run's real duration (from its start) in the metrics."""
        marketplace = "unknown"
        async with unit_of_work(self.sessionmaker, self.queue, tenant_id) as s:
            repo = SyncRepository(s, tenant_id)
            finished = await self._finish(repo, run_id, RunOutcome(SyncStatus.FAILED, {}, code, error), stages)
            if finished is not None:
                record_sync_event(s, tenant_id, finished.connection_id, run_id, "failed", {}, code)
                await repo.record_failed(finished.connection_id)
                conn = await repo.connection(finished.connection_id)
                marketplace = conn.marketplace.value if conn is not None else marketplace
        record_sync_run(marketplace, "failed", code, finished.seconds if finished is not None else None)

    @staticmethod
    async def _finish(
        repo: SyncRepository, run_id: uuid.UUID, outcome: RunOutcome, stages: StageLog | None
    ) -> FinishedRun | None:
        return await repo.finish_run(
            run_id,
            outcome.status,
            counts=outcome.counts,
            stages=stages.to_json() if stages is not None else {},
            error_code=outcome.error_code,
            error=outcome.error,
        )
