"""`stock-tracker keys rotate`: re-encrypt every stored credential under the primary key."""

from __future__ import annotations

import uuid

from app.config import Settings


async def rotate_credentials(settings: Settings) -> tuple[int, list[uuid.UUID]]:
    """Re-encrypt marketplace credentials; returns how many were rewritten and which no key could open."""
    from app.db.engine import create_engine, create_sessionmaker
    from app.domain.connections.services import rotate_all_credentials
    from app.lib.crypto import CredentialCipher

    cipher = CredentialCipher(settings.encryption_key_list)
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        return await rotate_all_credentials(create_sessionmaker(engine), cipher)
    finally:
        await engine.dispose()
