"""SQL of the events area: the event log and the suppression log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models.notifications import Event, Suppression
from app.db.repository import TenantRepository
from app.lib.ids import uuid7


class EventRepository(TenantRepository[Event]):
    model = Event

    async def insert_once(
        self, event_id: uuid.UUID, event_type: str, data: dict[str, Any], created_at: datetime
    ) -> bool:
        """Insert the event unless its id (derived from its key) exists; True when this call inserted it."""
        stmt = (
            insert(Event)
            .values(id=event_id, tenant_id=self.tenant_id, type=event_type, data=data, created_at=created_at)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(Event.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def insert_many(
        self, rows: list[tuple[uuid.UUID, str, dict[str, Any]]], created_at: datetime
    ) -> set[uuid.UUID]:
        """``insert_once`` for a batch in one statement: rows are (id, type, data); returns the ids inserted."""
        if not rows:
            return set()
        values = [
            {"id": event_id, "tenant_id": self.tenant_id, "type": event_type, "data": data, "created_at": created_at}
            for event_id, event_type, data in rows
        ]
        inserted: set[uuid.UUID] = set()
        for start in range(0, len(values), 2000):  # PostgreSQL takes at most 65 535 parameters per statement
            stmt = insert(Event).values(values[start : start + 2000]).on_conflict_do_nothing(index_elements=["id"])
            inserted |= set((await self.session.execute(stmt.returning(Event.id))).scalars().all())
        return inserted


class SuppressionRepository(TenantRepository[Suppression]):
    model = Suppression

    def log(
        self,
        reason: str,
        detail: str,
        *,
        event_id: uuid.UUID | None = None,
        event_type: str | None = None,
        channel_id: uuid.UUID | None = None,
        endpoint_id: uuid.UUID | None = None,
    ) -> None:
        self.add(
            Suppression(
                id=uuid7(),
                reason=reason,
                detail=detail,
                event_id=event_id,
                event_type=event_type,
                channel_id=channel_id,
                endpoint_id=endpoint_id,
            )
        )

    async def page(self, after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Suppression]:
        stmt = (
            select(Suppression)
            .where(Suppression.tenant_id == self.tenant_id)
            .order_by(Suppression.created_at.desc(), Suppression.id.desc())
            .limit(limit)
        )
        if after is not None:
            stmt = stmt.where(tuple_(Suppression.created_at, Suppression.id) < tuple_(*after))
        return list((await self.session.execute(stmt)).scalars().all())


async def expiring_tokens(session: AsyncSession, until: datetime) -> list[Any]:
    """Every tenant's Wildberries connections whose token expires between now and ``until`` (system function)."""
    rows = await session.execute(
        text("SELECT tenant_id, id, name, marketplace, token_expires_at FROM st_expiring_tokens(:until)"),
        {"until": until},
    )
    return list(rows.all())
