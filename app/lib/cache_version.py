"""The per-tenant cache version: bumping it makes every cached page of that tenant stale at once.

Lives in lib/ (Redis only) so the worker can bump it after a sync without importing the server.
"""

from __future__ import annotations

import secrets
import uuid

from redis.asyncio import Redis

from app.lib.gate_events import CHANNEL, notify_local, tenant_event

VERSION_LEN = 16


def version_key(tenant_id: uuid.UUID | str) -> str:
    return f"cache:v1:{{{tenant_id}}}:version"


async def bump_tenant_cache_version(redis: Redis, tenant_id: uuid.UUID | str) -> None:
    """Make every cached page of this tenant stale (call after its catalogue or stock changed), and tell every
    API process's token leases of the tenant (app/lib/gate_events.py) in the same round trip."""
    event = tenant_event(tenant_id)
    notify_local(event)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(version_key(tenant_id), secrets.token_hex(VERSION_LEN // 2))
        pipe.publish(CHANNEL, event)
        await pipe.execute()
