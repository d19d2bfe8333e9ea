"""The SQL behind the operations gauges: system-wide reads over the outbox (a system table) and the audited
``st_expiring_tokens()`` function (connections are tenant tables: no direct cross-tenant read)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models.outbox import OutboxMessage


async def outbox_backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """Rows not yet enqueued and the oldest one's creation time (the partial index ``ix_outbox_pending``)."""
    stmt = select(func.count(), func.min(OutboxMessage.created_at)).where(OutboxMessage.enqueued_at.is_(None))
    count, oldest = (await session.execute(stmt)).one()
    return int(count), oldest


async def tokens_expiring(session: AsyncSession, until: datetime) -> dict[str, int]:
    """Marketplace → connections (not disabled) whose token expires between now and ``until``."""
    rows = await session.execute(
        text("SELECT marketplace, count(*) FROM st_expiring_tokens(:until) GROUP BY marketplace"), {"until": until}
    )
    return {str(r[0]): int(r[1]) for r in rows.all()}
