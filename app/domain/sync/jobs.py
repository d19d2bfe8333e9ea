"""arq jobs of the sync area: one sync per connection (never two at once), and the per-minute fan-out."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable
from typing import Any, cast

import structlog
from arq import Retry

from app.domain.jobcontext import JobContext
from app.domain.operations.services import mark_tenant_synced
from app.domain.sync.records import StageLog
from app.domain.sync.scheduler import fan_out
from app.domain.sync.services import SyncRescheduled, SyncService, run_id_for
from app.integrations.marketplace import MarketplaceUnavailable
from app.lib.cache_version import bump_tenant_cache_version

log = structlog.get_logger(__name__)
LOCK_TTL_MS = 15 * 60 * 1000
MAX_TRIES = 6
_RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"""


def _service(ctx: JobContext) -> SyncService:
    return SyncService(
        ctx["sessionmaker"],
        ctx["gateway"],
        ctx["cipher"],
        ctx["redis"],
        billing_enabled=ctx["settings"].billing_enabled,
    )


async def sync_connection(
    ctx: JobContext,
    *,
    tenant_id: str,
    connection_id: str,
    trigger: str = "scheduled",
    run_id: str | None = None,
) -> str | None:
    """Sync one connection. A second job for the same connection waits its turn (Redis lock)."""
    job_id = ctx.get("job_id") or f"sync:{connection_id}:adhoc"
    rid = uuid.UUID(run_id) if run_id else run_id_for(job_id)
    tid = uuid.UUID(tenant_id)
    redis = ctx["redis"]
    lock_key = f"lock:sync:{connection_id}"
    token = secrets.token_hex(8)
    if not await redis.set(lock_key, token, nx=True, px=LOCK_TTL_MS):
        raise Retry(defer=15)
    service = _service(ctx)
    stages = StageLog()  # ours, so a failure that escapes the run still records the steps it got through
    try:
        status = await service.run(tid, uuid.UUID(connection_id), rid, trigger, job_id, stages)
        if status is not None and status.value in ("succeeded", "partially_failed"):
            # New stock is committed: cached pages of this tenant must not be served any more.
            await bump_tenant_cache_version(redis, tenant_id)
            await mark_tenant_synced(redis, ctx["settings"].queue_name, tenant_id)  # the active-tenants gauge
        return status.value if status else None
    except SyncRescheduled as exc:
        log.info("sync.rescheduled", reason=exc.reason, defer=exc.defer)
        raise Retry(defer=max(1.0, exc.defer)) from exc
    except MarketplaceUnavailable as exc:
        tries = int(ctx.get("job_try", 1))
        if tries < MAX_TRIES:
            await service.requeue(tid, rid, f"marketplace unavailable: {exc}", stages)
            raise Retry(defer=min(600, 15 * 2 ** (tries - 1))) from exc
        await service.fail(tid, rid, "marketplace_unavailable", str(exc), stages)
        return "failed"
    except Exception as exc:
        # Never leave a run "running": record the failure (no internals), then let arq log the traceback.
        await service.fail(tid, rid, "internal_error", type(exc).__name__, stages)
        raise
    finally:
        # redis-py types a command's result as "awaitable or not" for its sync and async clients alike.
        await cast(Awaitable[Any], redis.eval(_RELEASE, 1, lock_key, token))


async def sync_fanout(ctx: JobContext) -> int:
    """Cron, every minute: enqueue a sync for each connection whose interval has elapsed."""
    return await fan_out(ctx["sessionmaker"], ctx["redis"], ctx["settings"])
