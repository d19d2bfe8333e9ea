"""`stock-tracker secrets rotate` (also `keys rotate`): re-encrypt everything stored encrypted under the
primary key, so the keys in ENCRYPTION_KEYS_PREVIOUS (or after the first of ENCRYPTION_KEYS) can go."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.config import Settings


@dataclass
class RotationReport:
    """Per kind of stored secret: how many were re-encrypted, and which no configured key could open."""

    rotated: dict[str, int] = field(default_factory=dict)
    failed: dict[str, list[uuid.UUID]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.failed.values())


async def rotate_stored_secrets(settings: Settings) -> RotationReport:
    """Marketplace credentials and webhook signing secrets (current and previous), tenant by tenant."""
    from app.db.engine import create_engine, create_sessionmaker
    from app.domain.connections.services import rotate_all_credentials
    from app.domain.webhooks.services import rotate_all_secrets
    from app.lib.crypto import CredentialCipher

    cipher = CredentialCipher(settings.encryption_key_list)
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    report = RotationReport()
    try:
        sessionmaker = create_sessionmaker(engine)
        for kind, rotate in (
            ("marketplace credentials", rotate_all_credentials),
            ("webhook signing secrets", rotate_all_secrets),
        ):
            count, failed = await rotate(sessionmaker, cipher)
            report.rotated[kind] = count
            report.failed[kind] = failed
        return report
    finally:
        await engine.dispose()


async def rotate_credentials(settings: Settings) -> tuple[int, list[uuid.UUID]]:
    """Everything `rotate_stored_secrets` does, summed (the older `keys rotate` interface)."""
    report = await rotate_stored_secrets(settings)
    return sum(report.rotated.values()), [i for ids in report.failed.values() for i in ids]
