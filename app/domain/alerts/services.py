"""Use-cases of the alerts API (rules, alerts, suppressions), and the threshold other areas read ("low")."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models.notifications import AlertRule, Suppression
from app.domain.alerts.repositories import AlertRepository, AlertRuleRepository, tenant_timezone
from app.domain.alerts.schemas import AlertRuleDefaultUpdate, ProductAlertRuleUpdate
from app.domain.events.services import FanoutNotificationRepository, QuietHours, SuppressionRepository, parse_hhmm
from app.lib.clock import utcnow
from app.lib.errors import NotFoundError
from app.lib.pagination import Page, paginate

# An alert row as the API reads it: (Alert, product external id, vendor code, title, marketplace, warehouse name).
AlertRow = Any


async def tenant_low_units(session: AsyncSession, tenant_id: uuid.UUID, default: int) -> int:
    """Units below which a product counts as low for this tenant: its default rule, else the deployment's."""
    row = await AlertRuleRepository(session, tenant_id).default_units()
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
        rule, _ = await self.rules.claim(None, None)
        rule.enabled = data.enabled
        rule.units_below = units
        rule.days_of_cover_below = data.days_of_cover_below
        rule.cover_window_days = data.cover_window_days
        rule.hysteresis_units = data.hysteresis_units
        rule.hysteresis_days = data.hysteresis_days
        rule.quiet_hours_start, rule.quiet_hours_end = start, end
        rule.max_alerts_per_sync = data.max_alerts_per_sync
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
        await FanoutNotificationRepository(self.session, self.tenant_id).reschedule_held(until, now)

    async def _check_place(self, product_id: uuid.UUID, warehouse_id: uuid.UUID | None) -> None:
        connection_id = await self.rules.product_connection(product_id)
        if connection_id is None:
            raise NotFoundError("No such product.")
        if warehouse_id is not None and await self.rules.warehouse_connection(warehouse_id) != connection_id:
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
        rule, created = await self.rules.claim(product_id, warehouse_id)
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

    async def overrides(self, product_id: uuid.UUID | None, cursor: str | None, limit: int) -> Page[AlertRule]:
        """Product and product × warehouse overrides, by id."""
        return await paginate(
            lambda after, n: self.rules.overrides_page(product_id, after[0] if after else None, n),
            cursor=cursor,
            limit=limit,
            key=lambda rule: (rule.id,),
            types=(uuid.UUID,),
        )


class AlertService:
    """Reading alerts and the suppression log (alerts are opened and resolved by the evaluation)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.alerts = AlertRepository(session, tenant_id)
        self.suppressions = SuppressionRepository(session, tenant_id)

    async def page(
        self, status: str | None, product_id: uuid.UUID | None, cursor: str | None, limit: int
    ) -> Page[AlertRow]:
        """Alerts newest first, each with its product and warehouse."""
        return await paginate(
            lambda after, n: self.alerts.page(status=status, product_id=product_id, after=after, limit=n),
            cursor=cursor,
            limit=limit,
            key=lambda row: (row[0].opened_at, row[0].id),
            types=(datetime, uuid.UUID),
        )

    async def get(self, alert_id: uuid.UUID) -> AlertRow:
        rows = await self.alerts.page(status=None, product_id=None, after=None, limit=1, alert_id=alert_id)
        if not rows:
            raise NotFoundError("No such alert.")
        return rows[0]

    async def suppressions_page(self, cursor: str | None, limit: int) -> Page[Suppression]:
        """What was not sent at once (or at all), newest first."""
        return await paginate(
            self.suppressions.page,
            cursor=cursor,
            limit=limit,
            key=lambda row: (row.created_at, row.id),
            types=(datetime, uuid.UUID),
        )
