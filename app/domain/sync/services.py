"""One sync of one connection: start the run, run the pipeline's stages (pipeline.py), record how it ended."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta

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
    RunMustWait,
    RunOutcome,
    SyncTarget,
    WriteStage,
    outcome_of,
    record_sync_event,
)
from app.domain.sync.records import StageLog
from app.domain.sync.repositories import FinishedRun, SyncRepository
from app.domain.sync.stash import RunStash

# The manual-sync path the API and the Telegram /sync command share (other areas reach it through here).
from app.domain.sync.triggers import SyncTrigger as SyncTrigger
from app.domain.sync.triggers import request_manual_sync as request_manual_sync
from app.integrations.marketplace import MarketplaceAuthError, MarketplaceWaitExhausted, WaitBudget
from app.lib.clock import utcnow
from app.lib.crypto import CredentialCipher
from app.observability.metrics import instruments, record_sync_run

log = structlog.get_logger(__name__)
SYNC_JOB = "sync.connection"
RUN_NAMESPACE = uuid.UUID("2b0f7a3c-9c1e-4d55-8a0e-6f1c3b2d4e5f")


class SyncWaiting(Exception):
    """The run waits on a marketplace budget (recorded ``waiting``): its next job runs after ``defer`` s."""

    def __init__(self, defer: float, reason: str) -> None:
        super().__init__(reason)
        self.defer = defer
        self.reason = reason


def next_job_id(job_id: str, hop: int) -> str:
    """The id of the job a run is handed on to: the first job's id with the hop number."""
    return f"{job_id.split('+', 1)[0]}+{hop + 1}"


def hop_of(job_id: str) -> int:
    """How many times the run of ``job_id`` was handed on (``<first job id>+<hop>``; 0 for the first job)."""
    _, _, hop = job_id.partition("+")
    return int(hop) if hop.isdigit() else 0


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
        *,
        max_wait_s: float = 600.0,
        lease_s: float = 30.0,
        next_job_id: str | None = None,
        stash: RunStash | None = None,
    ) -> SyncStatus | None:
        """Sync the connection once; ``stages`` (the caller's, so it can record a failure that escapes) is
        filled with a record per step. None when the connection is gone; the stored status when the run had
        already ended (the sweep ended it, or this is a second delivery of its job).

        Marketplace limits: the run waits at most ``max_wait_s`` in total (over all its jobs), then ends
        ``failed``/``rate_limited``; a wait longer than a step may sleep records the run ``waiting`` (its
        next job ``next_job_id``, what was fetched kept in ``stash``) and raises ``SyncWaiting``."""
        started = time.perf_counter()
        stages = StageLog() if stages is None else stages
        async with session_scope(self.sessionmaker, tenant_id) as s:
            repo = SyncRepository(s, tenant_id)
            conn = await repo.connection(connection_id)
            if conn is None:
                return None  # deleted since it was queued
            await repo.open_run(run_id, connection_id, trigger, job_id)
            # Locked until the run starts: the sweep's resume (a fresh job) and this start never cross.
            state = await repo.run_state(run_id, lock=True)
            if state is None or state.finished:
                return state.status if state is not None else None
            if job_id and state.job_id and state.job_id != job_id:
                # The run belongs to another job now (the sweep resumed it after this job's worker stopped):
                # this is a late delivery of the old job (arq's, after its timeout) and must not run it again.
                log.info("sync.job.superseded", run_id=str(run_id), job_id=job_id, owner=state.job_id)
                return state.status
            await repo.record_attempt(connection_id)
            if conn.status in (ConnectionStatus.INVALID, ConnectionStatus.DISABLED):
                reason = f"The connection is {conn.status.value}: {conn.status_reason or ''}".strip()
                await repo.finish_run(
                    run_id, SyncStatus.FAILED, counts={}, stages={}, error_code="connection_invalid", error=reason
                )
                await repo.record_failed(connection_id, "connection_invalid")
                record_sync_run(conn.marketplace.value, "failed", "connection_invalid", None)
                return SyncStatus.FAILED
            await repo.start_run(run_id, utcnow() + timedelta(seconds=lease_s))
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

        resumed = await stash.load(run_id, stages) if stash is not None else None
        budget = WaitBudget(max_wait_s, spent=state.waited_seconds)
        now = utcnow()
        try:
            snapshot = await FetchStage(self.gateway, budget).run(target, now, stages, resumed)
        except MarketplaceAuthError as exc:
            await self._refused(target, exc, stages)
            record_sync_run(target.marketplace, "failed", "marketplace_auth", time.perf_counter() - started)
            return SyncStatus.FAILED
        except MarketplaceWaitExhausted as exc:
            await self._rate_limited(target, budget, max_wait_s, exc.retry_after, str(exc), stages)
            return SyncStatus.FAILED
        except RunMustWait as exc:
            if not budget.allows(exc.retry_after):
                await self._rate_limited(target, budget, max_wait_s, exc.retry_after, exc.reason, stages)
                return SyncStatus.FAILED
            resume_at = utcnow() + timedelta(seconds=exc.retry_after)
            if stash is not None:
                await stash.save(run_id, exc.snapshot, stages, exc.retry_after)
            async with session_scope(self.sessionmaker, tenant_id) as s:
                await SyncRepository(s, tenant_id).wait_run(
                    run_id,
                    resume_at=resume_at,
                    reason=f"{exc.step}: {exc.reason}"[:500],
                    waited_seconds=budget.spent + exc.retry_after,
                    stages=stages.to_json(),
                    job_id=next_job_id or job_id or "",
                    lease_until=resume_at + timedelta(seconds=lease_s),
                )
            log.info("sync.run.waiting", connection_id=str(connection_id), step=exc.step, defer=exc.retry_after)
            raise SyncWaiting(exc.retry_after, f"{exc.step}: {exc.reason}") from exc
        NormalizeStage().run(snapshot, target, stages)

        async with unit_of_work(self.sessionmaker, self.queue, tenant_id) as s:
            repo = SyncRepository(s, tenant_id)
            written = await WriteStage(billing_enabled=self.billing_enabled).run(s, target, snapshot, now, stages)
            await EvaluateStage().run(s, target, written, stages)
            await repo.record_synced(connection_id, written.status, now, written.cursor)
            outcome = outcome_of(written, snapshot)
            PublishStage().run(s, target, outcome, stages)
            await self._finish(repo, run_id, outcome, stages, waited_seconds=budget.spent)
        if stash is not None and resumed is not None:
            await stash.drop(run_id)
        counts = written.counts
        instruments().rows_upserted.add(counts.changes + counts.zeroed)
        instruments().history_points.add(counts.history_points)
        record_sync_run(target.marketplace, outcome.status.value, outcome.error_code, time.perf_counter() - started)
        log.info("sync.run.finished", connection_id=str(connection_id), status=outcome.status.value, **outcome.counts)
        return outcome.status

    async def _rate_limited(
        self, target: SyncTarget, budget: WaitBudget, cap: float, wait: float, reason: str, stages: StageLog
    ) -> None:
        """The run's total wait would pass its cap: it ends failed/rate_limited (its steps and calls kept)."""
        error = (
            f"Waited {budget.spent:.0f} s on marketplace limits; waiting {wait:.0f} s more would pass "
            f"the cap of {cap:.0f} s ({reason})"
        )
        await self.fail(target.tenant_id, target.run_id, "rate_limited", error[:2000], stages, waited=budget.spent)

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
            outcome = RunOutcome(SyncStatus.FAILED, {"calls": stages.calls}, "marketplace_auth", str(exc))
            PublishStage().run(s, target, outcome, stages)
            await self._finish(repo, target.run_id, outcome, stages)

    async def requeue(
        self,
        tenant_id: uuid.UUID,
        run_id: uuid.UUID,
        reason: str,
        stages: StageLog | None = None,
        lease_until: datetime | None = None,
        resume_at: datetime | None = None,
    ) -> None:
        """Put the run back to ``queued`` while its job waits to run again, or ``waiting`` until
        ``resume_at`` (``stages`` None keeps the stored records)."""
        async with session_scope(self.sessionmaker, tenant_id) as s:
            await SyncRepository(s, tenant_id).requeue_run(
                run_id, reason, stages.to_json() if stages is not None else None, lease_until, resume_at
            )

    async def hold(
        self,
        tenant_id: uuid.UUID,
        connection_id: uuid.UUID,
        run_id: uuid.UUID,
        trigger: str,
        job_id: str,
        reason: str,
        lease_until: datetime,
        *,
        current_job: str | None = None,
    ) -> bool:
        """The connection is busy: the run stays ``queued`` under its next job ``job_id``. False when the run
        ended or runs meanwhile, or belongs to another job than ``current_job`` (the sweep resumed it): then
        there is nothing to hand on."""
        async with session_scope(self.sessionmaker, tenant_id) as s:
            repo = SyncRepository(s, tenant_id)
            if await repo.connection(connection_id) is None:
                return False
            # A run this job records now is its own until it is handed on.
            await repo.open_run(run_id, connection_id, trigger, current_job or job_id, lease_until)
            return await repo.hold_run(run_id, job_id, reason, lease_until, owner=current_job)

    async def superseded(self, tenant_id: uuid.UUID, run_id: uuid.UUID, job_id: str) -> SyncStatus | None:
        """The unfinished run's status when it belongs to another job than ``job_id`` (the sweep resumed it
        under a fresh job): this job must leave it alone. None otherwise (no such run yet, or it is ours)."""
        async with session_scope(self.sessionmaker, tenant_id) as s:
            state = await SyncRepository(s, tenant_id).run_state(run_id)
        if state is None or state.finished or not state.job_id or state.job_id == job_id:
            return None
        return state.status

    async def renew_lease(self, tenant_id: uuid.UUID, run_id: uuid.UUID, lease_s: float) -> None:
        async with session_scope(self.sessionmaker, tenant_id) as s:
            await SyncRepository(s, tenant_id).renew_lease(run_id, utcnow() + timedelta(seconds=lease_s))

    async def fail(
        self,
        tenant_id: uuid.UUID,
        run_id: uuid.UUID,
        code: str,
        error: str,
        stages: StageLog | None = None,
        *,
        waited: float | None = None,
    ) -> bool:
        """End the run ``failed`` (the job gave up or broke): see ``end_run_failed``."""
        return await end_run_failed(
            self.sessionmaker, self.queue, tenant_id, run_id, code, error, stages, waited=waited
        )

    @staticmethod
    async def _finish(
        repo: SyncRepository,
        run_id: uuid.UUID,
        outcome: RunOutcome,
        stages: StageLog | None,
        *,
        waited_seconds: float | None = None,
        expired_before: datetime | None = None,
    ) -> FinishedRun | None:
        return await repo.finish_run(
            run_id,
            outcome.status,
            counts=outcome.counts,
            stages=stages.to_json() if stages is not None else None,
            error_code=outcome.error_code,
            error=outcome.error,
            waited_seconds=waited_seconds,
            expired_before=expired_before,
        )


async def end_run_failed(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: JobQueue | None,
    tenant_id: uuid.UUID,
    run_id: uuid.UUID,
    code: str,
    error: str,
    stages: StageLog | None = None,
    *,
    waited: float | None = None,
    expired_before: datetime | None = None,
) -> bool:
    """End a run ``failed`` with ``code``: its ``sync.failed`` event, the connection's last outcome, and the
    run's real duration (from its start) in the metrics. With ``expired_before`` (the sweep) only a run still
    unfinished whose lease expired before then is ended. True when it ended the run."""
    marketplace = "unknown"
    counts = {"calls": stages.calls} if stages is not None else {}
    outcome = RunOutcome(SyncStatus.FAILED, counts, code, error)
    async with unit_of_work(sessionmaker, queue, tenant_id) as s:
        repo = SyncRepository(s, tenant_id)
        finished = await SyncService._finish(
            repo, run_id, outcome, stages, waited_seconds=waited, expired_before=expired_before
        )
        if finished is not None:
            record_sync_event(s, tenant_id, finished.connection_id, run_id, "failed", counts, code)
            await repo.record_failed(finished.connection_id, code)
            conn = await repo.connection(finished.connection_id)
            marketplace = conn.marketplace.value if conn is not None else marketplace
    if finished is None:
        return False
    record_sync_run(marketplace, "failed", code, finished.seconds)
    return True
