"""The one cross-tenant read of the reports area, through its audited SECURITY DEFINER function."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def due_daily_reports(session: AsyncSession, now: datetime) -> list[tuple[uuid.UUID, date]]:
    """(tenant, local date) of every organization whose daily report time has passed today, not yet sent."""
    rows = await session.execute(text("SELECT tenant_id, local_date FROM st_due_daily_reports(:now)"), {"now": now})
    return [(r[0], r[1]) for r in rows]
