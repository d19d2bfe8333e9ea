"""The per-tenant cache version: bumping it makes every cached page of that tenant stale at once.

Lives in lib/ (Redis only) so the worker can bump it after a sync without importing the server.
"""

from __future__ import annotations

import secrets
import uuid

from redis.asyncio import Redis

VERSION_LEN = 16


def version_key(tenant_id: uuid.UUID | str) -> str:
    return f"cache:v1:{{{tenant_id}}}:version"


async def bump_tenant_cache_version(redis: Redis, tenant_id: uuid.UUID | str) -> None:
    """Make every cached page of this tenant stale (call after its catalogue or stock changed)."""
    await redis.set(version_key(tenant_id), secrets.token_hex(VERSION_LEN // 2))
