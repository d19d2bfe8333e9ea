"""The organization's report settings (language, daily report, restock targets) and per-product restock settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from msgspec import UNSET
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.reports.repositories import ReportRepository, SettingsRepository
from app.domain.reports.schemas import ReportSettings, ReportSettingsUpdate, RestockSettings, RestockSettingsUpdate
from app.lib.errors import NotFoundError


@dataclass(frozen=True, slots=True)
class OrgReportSettings:
    locale: str = "ru"
    timezone: str = "Europe/Moscow"
    daily_report_time: time | None = None
    report_window_days: int = 30
    lead_time_days: int = 14
    safety_days: int = 7
    last_daily_report_on: date | None = None
    updated_at: datetime | None = None

    def language(self, asked: str | None) -> str:
        """``?lang=`` when given, else the organization's locale."""
        return asked or self.locale


async def org_settings(session: AsyncSession, tenant_id: uuid.UUID) -> OrgReportSettings:
    """The stored settings, or the defaults where the organization never changed them."""
    row = await SettingsRepository(session, tenant_id).get()
    tz = await ReportRepository(session, tenant_id).timezone()
    if row is None:
        return OrgReportSettings(timezone=tz)
    return OrgReportSettings(
        locale=row.locale,
        timezone=tz,
        daily_report_time=row.daily_report_time,
        report_window_days=row.report_window_days,
        lead_time_days=row.lead_time_days,
        safety_days=row.safety_days,
        last_daily_report_on=row.last_daily_report_on,
        updated_at=row.updated_at,
    )


def _out(s: OrgReportSettings) -> ReportSettings:
    return ReportSettings(
        locale=s.locale,  # type: ignore[arg-type]
        timezone=s.timezone,
        daily_report_time=f"{s.daily_report_time:%H:%M}" if s.daily_report_time else None,
        report_window_days=s.report_window_days,
        lead_time_days=s.lead_time_days,
        safety_days=s.safety_days,
        last_daily_report_on=s.last_daily_report_on,
        updated_at=s.updated_at,
    )


class ReportSettingsService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.settings = SettingsRepository(session, tenant_id)
        self.reports = ReportRepository(session, tenant_id)

    async def get(self) -> ReportSettings:
        return _out(await org_settings(self.session, self.tenant_id))

    async def update(self, data: ReportSettingsUpdate) -> ReportSettings:
        """Change only the fields given (``daily_report_time: null`` turns the daily report off)."""
        values: dict[str, Any] = {}
        for name in ("locale", "report_window_days", "lead_time_days", "safety_days"):
            value = getattr(data, name)
            if value is not UNSET:
                values[name] = value
        if data.daily_report_time is not UNSET:
            hhmm = data.daily_report_time
            values["daily_report_time"] = None if hhmm is None else time.fromisoformat(hhmm)
        await self.settings.upsert(values)
        return await self.get()

    async def _product(self, product_id: uuid.UUID) -> None:
        if await self.reports.product_connection(product_id) is None:
            raise NotFoundError("No such product.")

    async def restock_settings(self, product_id: uuid.UUID) -> RestockSettings:
        await self._product(product_id)
        org = await org_settings(self.session, self.tenant_id)
        row = await self.settings.override(product_id)
        lead, safety = (row.lead_time_days, row.safety_days) if row else (None, None)
        return RestockSettings(
            product_id=product_id,
            lead_time_days=lead,
            safety_days=safety,
            effective_lead_time_days=org.lead_time_days if lead is None else lead,
            effective_safety_days=org.safety_days if safety is None else safety,
        )

    async def put_restock_settings(self, product_id: uuid.UUID, data: RestockSettingsUpdate) -> RestockSettings:
        """Replace the product's own settings (a null field follows the organization's)."""
        await self._product(product_id)
        await self.settings.put_override(product_id, data.lead_time_days, data.safety_days)
        return await self.restock_settings(product_id)

    async def delete_restock_settings(self, product_id: uuid.UUID) -> None:
        await self._product(product_id)
        await self.settings.delete_override(product_id)
