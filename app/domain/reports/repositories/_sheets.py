"""Google Sheets links of a tenant."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select

from app.db.models.reports import SheetLink
from app.db.repository import TenantRepository


class SheetLinkRepository(TenantRepository[SheetLink]):
    model = SheetLink

    async def all(self) -> list[SheetLink]:
        return list(await self.list(order_by=SheetLink.created_at))

    async def active_for(self, connection_id: uuid.UUID | None) -> list[SheetLink]:
        """Active links a refresh of ``connection_id`` concerns (links of every connection and its own)."""
        where = [SheetLink.status == "active"]
        if connection_id is not None:
            where.append(or_(SheetLink.connection_id.is_(None), SheetLink.connection_id == connection_id))
        return list(await self.list(*where, order_by=SheetLink.created_at))

    async def has_active(self, connection_id: uuid.UUID) -> bool:
        stmt = (
            self.select(SheetLink.id)
            .where(
                SheetLink.status == "active",
                or_(SheetLink.connection_id.is_(None), SheetLink.connection_id == connection_id),
            )
            .limit(1)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def locked(self, link_id: uuid.UUID) -> SheetLink | None:
        """The link, locked for this transaction (two pushes of one link record their outcome in turn)."""
        stmt = select(SheetLink).where(SheetLink.tenant_id == self.tenant_id, SheetLink.id == link_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    @staticmethod
    def record_push(link: SheetLink, now: datetime, status: str, rows: int | None, error: str | None) -> None:
        link.last_push_at = now
        link.last_push_status = status
        if rows is not None:
            link.last_push_rows = rows
        link.last_error = error
