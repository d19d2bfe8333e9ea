"""Which tenants synced recently: a Redis sorted set (tenant → last successful sync, ms), read by the
``stock_tracker_active_tenants`` gauge. Derived state, not a record: after a Redis flush it fills again
within a day of syncs, and the gauge reads it without a cross-tenant query."""

from __future__ import annotations

import time

from redis.asyncio import Redis

WINDOW_SECONDS = 24 * 3600


def _key(queue_name: str) -> str:
    return f"{queue_name}:tenants-synced"


async def mark_tenant_synced(redis: Redis, queue_name: str, tenant_id: str) -> None:
    await redis.zadd(_key(queue_name), {tenant_id: int(time.time() * 1000)})


async def active_tenants(redis: Redis, queue_name: str, window_seconds: int = WINDOW_SECONDS) -> int:
    """Tenants with a successful sync within the window (older entries are dropped on the way)."""
    since = int((time.time() - window_seconds) * 1000)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(_key(queue_name), "-inf", f"({since}")
        pipe.zcard(_key(queue_name))
        _, count = await pipe.execute()
    return int(count)
