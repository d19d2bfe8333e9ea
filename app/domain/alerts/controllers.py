"""HTTP endpoints: the default alert rule (with quiet hours), product overrides, alerts, suppressions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models.notifications import AlertRule
from app.domain.alerts.repositories import AlertRepository
from app.domain.alerts.rules import DEFAULT_HYSTERESIS_DAYS, DEFAULT_HYSTERESIS_UNITS, DEFAULT_WINDOW_DAYS
from app.domain.alerts.schemas import (
    Alert,
    AlertPage,
    AlertProduct,
    AlertRuleDefault,
    AlertRuleDefaultUpdate,
    ProductAlertRule,
    ProductAlertRulePage,
    ProductAlertRuleUpdate,
    QuietHours,
    SuppressionEntry,
    SuppressionPage,
)
from app.domain.alerts.services import AlertRuleService
from app.domain.api import decode_cursor, encode_cursor, errors_for, write_guard
from app.domain.events.repositories import SuppressionRepository
from app.lib.errors import NotFoundError
from app.lib.tokens import Principal

DEFINITION = (
    "An alert opens when a product's units over all its warehouses fall below units_below, or its days of cover "
    "(units ÷ orders per day over cover_window_days) fall below days_of_cover_below, and resolves when units reach "
    "units_below + hysteresis_units and cover reaches days_of_cover_below + hysteresis_days. 0 units is 'out'."
)


def _rules(request: Request[Any, Any, Any], session: AsyncSession, principal: Principal) -> AlertRuleService:
    return AlertRuleService(session, principal.tenant_id, request.app.state.settings.low_stock_units)


def default_out(rule: AlertRule | None, tz: str, low_stock_units: int) -> AlertRuleDefault:
    if rule is None:
        return AlertRuleDefault(
            enabled=True,
            units_below=low_stock_units,
            days_of_cover_below=None,
            cover_window_days=DEFAULT_WINDOW_DAYS,
            hysteresis_units=DEFAULT_HYSTERESIS_UNITS,
            hysteresis_days=DEFAULT_HYSTERESIS_DAYS,
            quiet_hours=None,
            timezone=tz,
            configured=False,
            definition=DEFINITION,
        )
    quiet = None
    if rule.quiet_hours_start is not None and rule.quiet_hours_end is not None:
        quiet = QuietHours(start=f"{rule.quiet_hours_start:%H:%M}", end=f"{rule.quiet_hours_end:%H:%M}")
    return AlertRuleDefault(
        enabled=rule.enabled,
        units_below=rule.units_below,
        days_of_cover_below=rule.days_of_cover_below,
        cover_window_days=rule.cover_window_days,
        hysteresis_units=rule.hysteresis_units,
        hysteresis_days=rule.hysteresis_days,
        quiet_hours=quiet,
        timezone=tz,
        configured=True,
        definition=DEFINITION,
        updated_at=rule.updated_at,
    )


def override_out(rule: AlertRule) -> ProductAlertRule:
    assert rule.product_id is not None
    return ProductAlertRule(
        id=rule.id,
        product_id=rule.product_id,
        warehouse_id=rule.warehouse_id,
        enabled=rule.enabled,
        units_below=rule.units_below,
        days_of_cover_below=rule.days_of_cover_below,
        cover_window_days=rule.cover_window_days,
        hysteresis_units=rule.hysteresis_units,
        hysteresis_days=rule.hysteresis_days,
        created_at=rule.created_at,
        updated_at=rule.updated_at,
    )


class AlertRuleController(Controller):
    path = "/api/v1/alert-rules"
    tags = ["alerts"]

    @get(
        "/default",
        operation_id="getDefaultAlertRule",
        summary="The organization's default alert rule",
        responses=errors_for(401),
    )
    async def get_default(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, principal: Principal
    ) -> AlertRuleDefault:
        rule, tz = await _rules(request, db_session, principal).default()
        return default_out(rule, tz, request.app.state.settings.low_stock_units)

    @put(
        "/default",
        operation_id="putDefaultAlertRule",
        summary="Replace the default alert rule (thresholds, hysteresis, quiet hours)",
        guards=[write_guard],
        responses=errors_for(401, 403, 422),
    )
    async def put_default(
        self,
        request: Request[Any, Any, Any],
        data: AlertRuleDefaultUpdate,
        db_session: AsyncSession,
        principal: Principal,
    ) -> AlertRuleDefault:
        rule, tz = await _rules(request, db_session, principal).put_default(data)
        return default_out(rule, tz, request.app.state.settings.low_stock_units)

    @get(
        "/",
        operation_id="listAlertRuleOverrides",
        summary="Product and product × warehouse overrides",
        responses=errors_for(401, 422),
    )
    async def list_overrides(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        product_id: uuid.UUID | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> ProductAlertRulePage:
        after = decode_cursor(cursor, uuid.UUID)
        rows = await _rules(request, db_session, principal).overrides(
            product_id, after[0] if after else None, limit + 1
        )
        next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
        return ProductAlertRulePage(items=[override_out(r) for r in rows[:limit]], next_cursor=next_cursor)


class ProductAlertRuleController(Controller):
    path = "/api/v1/products/{product_id:uuid}/alert-rule"
    tags = ["alerts"]

    @get(
        "/",
        operation_id="getProductAlertRule",
        summary="A product's own alert rule (or one warehouse's, with warehouse_id)",
        responses=errors_for(401, 404, 422),
    )
    async def get_rule(
        self,
        request: Request[Any, Any, Any],
        product_id: uuid.UUID,
        db_session: AsyncSession,
        principal: Principal,
        warehouse_id: uuid.UUID | None = None,
    ) -> ProductAlertRule:
        rule = await _rules(request, db_session, principal).get_override(product_id, warehouse_id)
        return override_out(rule)

    @put(
        "/",
        operation_id="putProductAlertRule",
        summary="Set a product's alert rule, or one warehouse's with warehouse_id (overrides the default)",
        guards=[write_guard],
        responses={
            201: ResponseSpec(data_container=ProductAlertRule, description="The rule was created"),
            **errors_for(401, 403, 404, 422),
        },
    )
    async def put_rule(
        self,
        request: Request[Any, Any, Any],
        product_id: uuid.UUID,
        data: ProductAlertRuleUpdate,
        db_session: AsyncSession,
        principal: Principal,
        warehouse_id: uuid.UUID | None = None,
    ) -> Response[ProductAlertRule]:
        rule, created = await _rules(request, db_session, principal).put_override(product_id, warehouse_id, data)
        return Response(override_out(rule), status_code=201 if created else 200)

    @delete(
        "/",
        operation_id="deleteProductAlertRule",
        summary="Remove a product's (or warehouse's) rule; the default applies again",
        guards=[write_guard],
        responses=errors_for(401, 403, 404, 422),
    )
    async def delete_rule(
        self,
        request: Request[Any, Any, Any],
        product_id: uuid.UUID,
        db_session: AsyncSession,
        principal: Principal,
        warehouse_id: uuid.UUID | None = None,
    ) -> None:
        await _rules(request, db_session, principal).delete_override(product_id, warehouse_id)


def alert_out(row: Any) -> Alert:
    a, external_id, vendor_code, title, marketplace, warehouse_name = row
    return Alert(
        id=a.id,
        status=a.status,
        level=a.level,
        connection_id=a.connection_id,
        product=AlertProduct(
            id=a.product_id,
            external_id=external_id,
            vendor_code=vendor_code,
            title=title,
            marketplace=marketplace.value,
        ),
        warehouse_id=a.warehouse_id,
        warehouse_name=warehouse_name,
        quantity=a.last_quantity,
        quantity_at_open=a.quantity_at_open,
        days_of_cover=a.last_days_of_cover,
        rule_scope=a.rule_scope,
        threshold=a.threshold,
        opened_at=a.opened_at,
        resolved_at=a.resolved_at,
        resolution=a.resolution,
    )


class AlertController(Controller):
    path = "/api/v1/alerts"
    tags = ["alerts"]

    @get(
        "/",
        operation_id="listAlerts",
        summary="Alerts, newest first (open or resolved)",
        responses=errors_for(401, 422),
    )
    async def list_alerts(
        self,
        db_session: AsyncSession,
        principal: Principal,
        status: Literal["open", "resolved"] | None = None,
        product_id: uuid.UUID | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> AlertPage:
        after = decode_cursor(cursor, datetime, uuid.UUID)
        rows = await AlertRepository(db_session, principal.tenant_id).page(
            status=status,
            product_id=product_id,
            after=after,
            limit=limit + 1,
        )
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1][0]
            next_cursor = encode_cursor(last.opened_at, last.id)
        return AlertPage(items=[alert_out(r) for r in rows[:limit]], next_cursor=next_cursor)

    @get("/{alert_id:uuid}", operation_id="getAlert", summary="One alert", responses=errors_for(401, 404))
    async def get_alert(self, alert_id: uuid.UUID, db_session: AsyncSession, principal: Principal) -> Alert:
        repo = AlertRepository(db_session, principal.tenant_id)
        rows = [r for r in await repo.page(status=None, product_id=None, after=None, limit=1, alert_id=alert_id)]
        if not rows:
            raise NotFoundError("No such alert.")
        return alert_out(rows[0])


class SuppressionController(Controller):
    path = "/api/v1/alert-suppressions"
    tags = ["alerts"]

    @get(
        "/",
        operation_id="listAlertSuppressions",
        summary="What was not sent at once (or at all) and why: quiet hours, inactive chats, refusals",
        responses=errors_for(401, 422),
    )
    async def list_suppressions(
        self,
        db_session: AsyncSession,
        principal: Principal,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> SuppressionPage:
        after = decode_cursor(cursor, datetime, uuid.UUID)
        rows = await SuppressionRepository(db_session, principal.tenant_id).page(after, limit + 1)
        next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
        return SuppressionPage(
            items=[
                SuppressionEntry(
                    id=r.id,
                    reason=r.reason,
                    detail=r.detail,
                    event_id=r.event_id,
                    event_type=r.event_type,
                    channel_id=r.channel_id,
                    endpoint_id=r.endpoint_id,
                    created_at=r.created_at,
                )
                for r in rows[:limit]
            ],
            next_cursor=next_cursor,
        )
