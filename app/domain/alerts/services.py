"""Use-cases of the alert rules API, and the threshold other areas read (the stock summary's "low")."""

from __future__ import annotations

import uuid
from datetime import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Product, Warehouse
from app.db.models.notifications import AlertRule
from app.domain.alerts.quiet import QuietHours, parse_hhmm
from app.domain.alerts.repositories import AlertRuleRepository, tenant_timezone
from app.domain.alerts.schemas import AlertRuleDefaultUpdate, ProductAlertRuleUpdate
from app.domain.telegram.repositories import NotificationRepository
from app.lib.clock import utcnow
from app.lib.errors import NotFoundError
from app.lib.ids import uuid7


async def tenant_low_units(session: AsyncSession, tenant_id: uuid.UUID, default: int) -> int:
    """Units below which a product counts as low for this tenant: its default rule, else the deployment's."""
    row = (
        await session.execute(
            select(AlertRule.units_below, AlertRule.enabled).where(
                AlertRule.tenant_id == tenant_id, AlertRule.product_id.is_(None)
            )
        )
    ).first()
    if row is None or row[0] is None or not row[1]:
        return default
    return int(row[0])


def _thresholds(enabled: bool, units: int | None, days: float | None, fallback_units: int) -> int | None:
    """An enabled rule with no threshold at all gets the deployment's default units (never a silent rule)."""
    if enabled and units is None and days is None:
        return fallback_units
    return units


class AlertRuleService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, low_stock_units: int) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.low_stock_units = low_stock_units
        self.rules = AlertRuleRepository(session, tenant_id)

    async def default(self) -> tuple[AlertRule | None, str]:
        return await self.rules.default(), await tenant_timezone(self.session, self.tenant_id)

    async def put_default(self, data: AlertRuleDefaultUpdate) -> tuple[AlertRule, str]:
        units = _thresholds(data.enabled, data.units_below, data.days_of_cover_below, self.low_stock_units)
        start: time | None = parse_hhmm(data.quiet_hours.start) if data.quiet_hours else None
        end: time | None = parse_hhmm(data.quiet_hours.end) if data.quiet_hours else None
        rule = await self.rules.default()
        if rule is None:
            rule = self.rules.add(AlertRule(id=uuid7(), product_id=None, warehouse_id=None))
        rule.enabled = data.enabled
        rule.units_below = units
        rule.days_of_cover_below = data.days_of_cover_below
        rule.cover_window_days = data.cover_window_days
        rule.hysteresis_units = data.hysteresis_units
        rule.hysteresis_days = data.hysteresis_days
        rule.quiet_hours_start, rule.quiet_hours_end = start, end
        rule.updated_at = utcnow()
        await self.session.flush()
        tz = await tenant_timezone(self.session, self.tenant_id)
        await self._release_held(start, end, tz)
        await self.session.refresh(rule)
        return rule, tz

    async def _release_held(self, start: time | None, end: time | None, tz: str) -> None:
        """Notifications held for quiet hours follow the new setting: when it no longer holds them now,
        they go out in one digest at the next sweep."""
        now = utcnow()
        until = QuietHours(start, end, tz).held_until(now) if start is not None and end is not None else None
        await NotificationRepository(self.session, self.tenant_id).reschedule_held(until, now)

    async def _check_place(self, product_id: uuid.UUID, warehouse_id: uuid.UUID | None) -> None:
        product = (
            await self.session.execute(
                select(Product.connection_id).where(Product.tenant_id == self.tenant_id, Product.id == product_id)
            )
        ).first()
        if product is None:
            raise NotFoundError("No such product.")
        if warehouse_id is not None:
            wh = (
                await self.session.execute(
                    select(Warehouse.connection_id).where(
                        Warehouse.tenant_id == self.tenant_id, Warehouse.id == warehouse_id
                    )
                )
            ).first()
            if wh is None or wh[0] != product[0]:
                raise NotFoundError("No such warehouse for this product's connection.")

    async def get_override(self, product_id: uuid.UUID, warehouse_id: uuid.UUID | None) -> AlertRule:
        await self._check_place(product_id, warehouse_id)
        rule = await self.rules.override(product_id, warehouse_id)
        if rule is None:
            raise NotFoundError("This product has no alert rule of its own; the default applies.")
        return rule

    async def put_override(
        self, product_id: uuid.UUID, warehouse_id: uuid.UUID | None, data: ProductAlertRuleUpdate
    ) -> tuple[AlertRule, bool]:
        await self._check_place(product_id, warehouse_id)
        units = _thresholds(data.enabled, data.units_below, data.days_of_cover_below, self.low_stock_units)
        rule = await self.rules.override(product_id, warehouse_id)
        created = rule is None
        if rule is None:
            rule = self.rules.add(AlertRule(id=uuid7(), product_id=product_id, warehouse_id=warehouse_id))
        rule.enabled = data.enabled
        rule.units_below = units
        rule.days_of_cover_below = data.days_of_cover_below
        rule.cover_window_days = data.cover_window_days
        rule.hysteresis_units = data.hysteresis_units
        rule.hysteresis_days = data.hysteresis_days
        rule.updated_at = utcnow()
        await self.session.flush()
        await self.session.refresh(rule)
        return rule, created

    async def delete_override(self, product_id: uuid.UUID, warehouse_id: uuid.UUID | None) -> None:
        rule = await self.get_override(product_id, warehouse_id)
        await self.rules.delete(rule.id)

    async def overrides(self, product_id: uuid.UUID | None, after: uuid.UUID | None, limit: int) -> list[AlertRule]:
        return await self.rules.overrides_page(product_id, after, limit)
