"""arq jobs of the sync area: one sync per connection (never two at once), the per-minute fan-out, and the
sweep that resumes (a bounded number of times, then ends) runs nobody runs any more.

A run's job hands it on to a *next* job (``<job id>+<n>``, deferred, same run id) instead of asking arq to
retry when the connection is busy (its lease is held) or the run waits on a marketplace budget: those are
waits, not failures, and must not spend the job's arq tries. Only real failures (the marketplace down) use
arq's retries, and the last one ends the run ``failed``.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import structlog
from arq import Retry

from app.domain.jobcontext import JobContext
from app.domain.operations.services import mark_tenant_synced
from app.domain.sync.lease import LeaseLost, SyncLease
from app.domain.sync.records import StageLog
from app.domain.sync.scheduler import fan_out
from app.domain.sync.services import SYNC_JOB, SyncService, SyncWaiting, next_job_id, run_id_for
from app.domain.sync.stash import RunStash
from app.domain.sync.sweep import sweep_expired_runs
from app.integrations.marketplace import MarketplaceUnavailable
from app.lib.cache_version import bump_tenant_cache_version
from app.lib.clock import utcnow

log = structlog.get_logger(__name__)
MAX_TRIES = 6
JOB = SYNC_JOB


def _service(ctx: JobContext) -> SyncService:
    return SyncService(
        ctx["sessionmaker"],
        ctx["gateway"],
        ctx["cipher"],
        ctx["redis"],
        billing_enabled=ctx["settings"].billing_enabled,
    )


async def _hand_on(
    ctx: JobContext,
    job_id: str,
    defer: float,
    *,
    tenant_id: str,
    connection_id: str,
    trigger: str,
    run_id: str,
    hop: int,
) -> None:
    await ctx["redis"].enqueue_job(
        JOB,
        tenant_id=tenant_id,
        connection_id=connection_id,
        trigger=trigger,
        run_id=run_id,
        hop=hop,
        _job_id=job_id,
        _defer_by=timedelta(seconds=max(0.5, defer)),
    )


async def sync_connection(
    ctx: JobContext,
    *,
    tenant_id: str,
    connection_id: str,
    trigger: str = "scheduled",
    run_id: str | None = None,
    hop: int = 0,
) -> str | None:
    """Sync one connection under its lease. A job that finds the connection busy keeps its run queued and
    hands it on to a job deferred until the holder's lease is due (its arq tries untouched)."""
    settings = ctx["settings"]
    job_id = ctx.get("job_id") or f"sync:{connection_id}:adhoc"
    rid = uuid.UUID(run_id) if run_id else run_id_for(job_id)
    tid, cid = uuid.UUID(tenant_id), uuid.UUID(connection_id)
    lease_s = settings.sync_lease_s
    service = _service(ctx)
    lease = SyncLease(ctx["redis"], connection_id, lease_s)
    nxt = next_job_id(job_id, hop)
    again = {"tenant_id": tenant_id, "connection_id": connection_id, "trigger": trigger, "run_id": str(rid)}
    if (owned_by_another := await service.superseded(tid, rid, job_id)) is not None:
        # A late delivery of a job whose run the sweep resumed under a fresh job (arq delivers a dead worker's
        # job again after its timeout): not ours any more, and not worth the connection's lease.
        log.info("sync.job.superseded", run_id=str(rid), job_id=job_id)
        return owned_by_another.value
    if not await lease.acquire():
        # A live holder renews its lease; a dead one's runs out: either way, come back when it is due.
        defer = await lease.remaining() + random.uniform(0.2, 1.0)
        until = utcnow() + timedelta(seconds=defer + 2 * lease_s)
        busy = "another sync of this connection is running"
        if await service.hold(tid, cid, rid, trigger, nxt, busy, until, current_job=job_id):
            await _hand_on(ctx, nxt, defer, **again, hop=hop + 1)
            log.info("sync.busy", connection_id=connection_id, defer=round(defer, 2), next_job=nxt)
        return "queued"
    stages = StageLog()  # ours, so a failure that escapes the run still records the steps it got through
    try:
        async with lease.kept(lambda: service.renew_lease(tid, rid, lease_s)):
            status = await service.run(
                tid,
                cid,
                rid,
                trigger,
                job_id,
                stages,
                max_wait_s=settings.sync_max_wait_s,
                lease_s=lease_s,
                next_job_id=nxt,
                stash=RunStash(ctx["redis"]),
            )
        if status is not None and status.value in ("succeeded", "partially_failed"):
            # New stock is committed: cached pages of this tenant must not be served any more.
            await bump_tenant_cache_version(ctx["redis"], tenant_id)
            await mark_tenant_synced(ctx["redis"], settings.queue_name, tenant_id)  # the active-tenants gauge
        return status.value if status else None
    except SyncWaiting as exc:
        # Recorded "waiting" (with resume_at) under the next job's id: hand the run on to it.
        await _hand_on(ctx, nxt, exc.defer, **again, hop=hop + 1)
        return "waiting"
    except MarketplaceUnavailable as exc:
        tries = int(ctx.get("job_try", 1))
        if tries < MAX_TRIES:
            # A real failure: arq's retry (its tries are the bound); the run shows when it goes on and why.
            defer = min(600, 15 * 2 ** (tries - 1))
            resume_at = utcnow() + timedelta(seconds=defer)
            until = resume_at + timedelta(seconds=2 * lease_s)
            await service.requeue(tid, rid, f"marketplace unavailable: {exc}", stages, until, resume_at)
            raise Retry(defer=defer) from exc
        await service.fail(tid, rid, "marketplace_unavailable", str(exc), stages)
        return "failed"
    except LeaseLost as exc:
        await service.fail(tid, rid, "abandoned", str(exc), stages)
        return "failed"
    except Exception as exc:
        # Never leave a run "running": record the failure (no internals), then let arq log the traceback.
        await service.fail(tid, rid, "internal_error", type(exc).__name__, stages)
        raise
    finally:
        await lease.release()


async def sync_fanout(ctx: JobContext) -> int:
    """Cron, every minute: enqueue a sync for each connection whose interval has elapsed."""
    return await fan_out(ctx["sessionmaker"], ctx["redis"], ctx["settings"])


async def sync_run_sweep(ctx: JobContext) -> int:
    """Cron, every 15 s: resume runs past their lease whose worker died or whose job is gone (a bounded number
    of times, then end them ``abandoned``)."""
    settings = ctx["settings"]
    return await sweep_expired_runs(
        ctx["sessionmaker"],
        ctx["redis"],
        lease_s=settings.sync_lease_s,
        max_resumes=settings.sync_max_resumes,
        queue=ctx["redis"],
    )
