"""The job behind ``record_event``: publish an event recorded in another area's transaction."""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import structlog

from app.db.engine import session_scope
from app.domain.delivery import send_now
from app.domain.events.repositories import expiring_tokens
from app.domain.events.services import publish_event
from app.domain.events.types import CONNECTION_TOKEN_EXPIRING
from app.domain.jobcontext import JobContext, job_session
from app.lib.clock import utcnow

log = structlog.get_logger(__name__)


async def publish_recorded_event(
    ctx: JobContext,
    *,
    tenant_id: str,
    event_id: str,
    event_type: str,
    data: dict[str, Any],
    occurred_at: str | None = None,
) -> bool:
    """Insert and fan out once; a second job for the same event id finds it and does nothing."""
    async with job_session(ctx, uuid.UUID(tenant_id)) as session:
        published = await publish_event(
            session,
            uuid.UUID(tenant_id),
            event_type,
            data,
            event_id=uuid.UUID(event_id),
            occurred_at=datetime.fromisoformat(occurred_at) if occurred_at else None,
        )
    if published is not None:
        await send_now(ctx, uuid.UUID(tenant_id), [published])
    log.info("event.published", event_type=event_type, event_id=event_id, new=published is not None)
    return published is not None


TOKEN_WARN_DAYS = (7, 1)


async def token_expiry_cron(ctx: JobContext) -> int:
    """Cron: warn about Wildberries tokens expiring within 7 days, and again within 1 day (each once).

    Runs its query once an hour (a Redis guard); the event key names the token's expiry and the
    threshold, so a warning is never repeated and a replaced token is warned about afresh.
    """
    now = utcnow()
    guard = f"cron:token-expiry:{now:%Y-%m-%dT%H}"
    if not await ctx["redis"].set(guard, "1", nx=True, ex=2 * 3600):
        return 0
    try:
        async with session_scope(ctx["sessionmaker"]) as s:
            rows = await expiring_tokens(s, now + timedelta(days=max(TOKEN_WARN_DAYS)))
        by_tenant: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for row in rows:
            by_tenant[row.tenant_id].append(row)
        published = 0
        for tenant_id, conns in by_tenant.items():
            async with job_session(ctx, tenant_id) as s:
                for c in conns:
                    left = (c.token_expires_at - now).total_seconds() / 86400
                    threshold = min(d for d in TOKEN_WARN_DAYS if left <= d)
                    data = {
                        "connection_id": str(c.id),
                        "name": c.name,
                        "marketplace": c.marketplace,
                        "expires_at": c.token_expires_at.isoformat(),
                        "days_left": max(0, math.ceil(left)),
                        "threshold_days": threshold,
                    }
                    key = f"{CONNECTION_TOKEN_EXPIRING}:{c.id}:{c.token_expires_at.isoformat()}:{threshold}"
                    if await publish_event(s, tenant_id, CONNECTION_TOKEN_EXPIRING, data, key=key) is not None:
                        published += 1
        return published
    except BaseException:
        await ctx["redis"].delete(guard)  # try again next minute
        raise
