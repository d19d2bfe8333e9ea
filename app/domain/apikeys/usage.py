"""Monthly API-call usage per tenant, counted in Redis (one small counter per tenant and calendar month).

Counted: every request authenticated with an API key that the rate limiter admitted. Not counted: calls
made by signed-in users (the dashboard), refused (429) calls, unauthenticated calls. The period is the
calendar month in UTC; counters are kept ~13 months so billing can report the previous period. The same
counter enforces the plan's monthly quota (``app/server/ratelimit.py``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from redis.asyncio import Redis

from app.lib.clock import utcnow

RETENTION_SECONDS = 400 * 24 * 3600


def period_of(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


def usage_key(tenant_id: uuid.UUID | str, period: str) -> str:
    # The hash tag keeps a tenant's counters with its other keys in one cluster slot.
    return f"usage:api_calls:{{{tenant_id}}}:{period}"


def current_usage_key(tenant_id: uuid.UUID | str, at: datetime | None = None) -> str:
    """This calendar month's counter (what the request gate counts in, app/server/gate.py)."""
    return usage_key(tenant_id, period_of(at or utcnow()))


async def api_calls(redis: Redis, tenant_id: uuid.UUID | str, period: str | None = None) -> int:
    """Calls counted in ``period`` (``YYYY-MM``, default: this month)."""
    value = await redis.get(usage_key(tenant_id, period or period_of(utcnow())))
    return int(value or 0)
