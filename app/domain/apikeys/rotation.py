"""Keys stored under a previous hash secret (``API_KEY_SECRET_PREVIOUS`` and friends): found, then re-hashed.

HMAC is one-way, so stored hashes cannot be moved to a new secret in bulk: each key moves the first time its
holder uses it after the rotation. Until then it is found by its hash under a previous secret, which costs
one more lookup per previous secret only when the current hash misses (and misses are cached).
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db.engine import session_scope
from app.domain.apikeys import keys
from app.domain.apikeys.repositories import ApiKeyLookup, ApiKeyRepository, KeyRecord

log = structlog.get_logger(__name__)


async def find_under_previous(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    key: str,
    current_hash: str,
    previous_secrets: Sequence[bytes],
) -> KeyRecord | None:
    """The key's record if it is stored under a previous secret; its row then gets ``current_hash``."""
    lookup = ApiKeyLookup(engine)
    for secret in previous_secrets:
        old_hash = keys.key_hash(secret, key)
        record = await lookup.by_hash(old_hash)
        if record is None:
            continue
        async with session_scope(sessionmaker, record.tenant_id) as session:
            await ApiKeyRepository(session, record.tenant_id).rehash(record.id, old_hash, current_hash)
        log.info("api_key.rehashed", key_id=str(record.id))
        return record
    return None
