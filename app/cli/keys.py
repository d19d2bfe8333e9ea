"""`stock-tracker keys rotate`: re-encrypt every stored credential under the primary key."""

from __future__ import annotations

from app.config import Settings


async def rotate_credentials(settings: Settings) -> int:
    """Re-encrypt marketplace credentials; returns how many rows were rewritten."""
    from app.db.engine import create_engine, create_sessionmaker
    from app.lib.crypto import CredentialCipher

    cipher = CredentialCipher(settings.encryption_key_list)
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        rotate = _credential_rotator()
        if rotate is None:
            return 0
        return await rotate(create_sessionmaker(engine), cipher)
    finally:
        await engine.dispose()


def _credential_rotator():
    try:
        from app.domain.connections.services import rotate_all_credentials
    except ImportError:  # no credential store in this build yet
        return None
    return rotate_all_credentials
