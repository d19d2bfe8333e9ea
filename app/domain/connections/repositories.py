"""SQL of the connections area."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Connection
from app.db.repository import TenantRepository


class ConnectionRepository(TenantRepository[Connection]):
    model = Connection

    async def encrypted_credentials(self) -> list[tuple[uuid.UUID, bytes]]:
        """Every connection's id and encrypted credentials (key rotation)."""
        rows = await self.session.execute(self.select(Connection.id, Connection.credentials_encrypted))
        return [(r[0], r[1]) for r in rows.all()]

    async def set_encrypted_credentials(self, connection_id: uuid.UUID, blob: bytes) -> None:
        await self.update_where({"credentials_encrypted": blob}, Connection.id == connection_id)


async def all_tenant_ids(session: AsyncSession) -> list[uuid.UUID]:
    """Every tenant's id, through the audited system function ``st_tenant_ids()`` (key rotation only)."""
    return [r[0] for r in (await session.execute(text("SELECT id FROM st_tenant_ids()"))).all()]
