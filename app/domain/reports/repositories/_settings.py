"""The organization's report settings (one row, absent = defaults) and per-product restock overrides."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import delete, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models.reports import ReportSettings, RestockOverride


class SettingsRepository:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def get(self) -> ReportSettings | None:
        stmt = select(ReportSettings).where(ReportSettings.tenant_id == self.tenant_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def upsert(self, values: dict[str, Any]) -> ReportSettings:
        """Create the row with ``values`` (the rest default) or change only ``values``."""
        stmt = insert(ReportSettings).values(tenant_id=self.tenant_id, **values)
        if values:
            stmt = stmt.on_conflict_do_update(
                index_elements=[ReportSettings.tenant_id], set_={**values, "updated_at": text("now()")}
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=[ReportSettings.tenant_id])
        await self.session.execute(stmt)
        row = await self.session.execute(
            select(ReportSettings)
            .where(ReportSettings.tenant_id == self.tenant_id)
            .execution_options(populate_existing=True)
        )
        return row.scalar_one()

    async def claim_daily_report(self, local_date: date) -> bool:
        """Mark today's daily report as sent, once: False when another job already claimed this date."""
        stmt = (
            update(ReportSettings)
            .where(
                ReportSettings.tenant_id == self.tenant_id,
                ReportSettings.daily_report_time.is_not(None),
                or_(ReportSettings.last_daily_report_on.is_(None), ReportSettings.last_daily_report_on < local_date),
            )
            .values(last_daily_report_on=local_date)
            .execution_options(synchronize_session=False)
        )
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    # ---- per-product restock settings -----------------------------------------------------------------------

    async def override(self, product_id: uuid.UUID) -> RestockOverride | None:
        stmt = select(RestockOverride).where(
            RestockOverride.tenant_id == self.tenant_id, RestockOverride.product_id == product_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def overrides(self, product_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int | None, int | None]]:
        if not product_ids:
            return {}
        stmt = select(RestockOverride.product_id, RestockOverride.lead_time_days, RestockOverride.safety_days).where(
            RestockOverride.tenant_id == self.tenant_id, RestockOverride.product_id.in_(product_ids)
        )
        return {r[0]: (r[1], r[2]) for r in await self.session.execute(stmt)}

    async def put_override(self, product_id: uuid.UUID, lead_time_days: int | None, safety_days: int | None) -> None:
        values = {"lead_time_days": lead_time_days, "safety_days": safety_days}
        stmt = (
            insert(RestockOverride)
            .values(tenant_id=self.tenant_id, product_id=product_id, **values)
            .on_conflict_do_update(
                index_elements=[RestockOverride.product_id], set_={**values, "updated_at": text("now()")}
            )
        )
        await self.session.execute(stmt)

    async def delete_override(self, product_id: uuid.UUID) -> bool:
        stmt = delete(RestockOverride).where(
            RestockOverride.tenant_id == self.tenant_id, RestockOverride.product_id == product_id
        )
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]
