"""HTTP endpoints: the default alert rule (with quiet hours), product overrides, alerts, suppressions."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from litestar import Controller, Response, delete, get, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from app.db.models.notifications import AlertRule
from app.db.models.notifications import Suppression as SuppressionRow
from app.domain.alerts.rules import (
    DEFAULT_HYSTERESIS_DAYS,
    DEFAULT_HYSTERESIS_UNITS,
    DEFAULT_MAX_ALERTS_PER_SYNC,
    DEFAULT_WINDOW_DAYS,
)
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
    Suppression,
    SuppressionPage,
)
from app.domain.alerts.services import AlertRow, AlertRuleService, AlertService
from app.domain.api import errors_for, write_guard

DEFINITION = (
    "An alert opens when a product's units over all its warehouses fall below units_below, or its days of cover "
    "(units ÷ orders per day over cover_window_days) fall below days_of_cover_below, and resolves when units reach "
    "units_below + hysteresis_units and cover reaches days_of_cover_below + hysteresis_days. 0 units is 'out'."
)


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
            max_alerts_per_sync=DEFAULT_MAX_ALERTS_PER_SYNC,
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
        max_alerts_per_sync=rule.max_alerts_per_sync,
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
    async def get_default(self, alert_rule_service: AlertRuleService) -> AlertRuleDefault:
        rule, tz = await alert_rule_service.default()
        return default_out(rule, tz, alert_rule_service.low_stock_units)

    @put(
        "/default",
        operation_id="putDefaultAlertRule",
        summary="Replace the default alert rule (thresholds, hysteresis, quiet hours)",
        guards=[write_guard],
        responses=errors_for(401, 403, 422),
    )
    async def put_default(self, data: AlertRuleDefaultUpdate, alert_rule_service: AlertRuleService) -> AlertRuleDefault:
        rule, tz = await alert_rule_service.put_default(data)
        return default_out(rule, tz, alert_rule_service.low_stock_units)

    @get(
        "/",
        operation_id="listAlertRuleOverrides",
        summary="Product and product × warehouse overrides",
        responses=errors_for(401, 422),
    )
    async def list_overrides(
        self,
        alert_rule_service: AlertRuleService,
        product_id: uuid.UUID | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> ProductAlertRulePage:
        page = await alert_rule_service.overrides(product_id, cursor, limit)
        return ProductAlertRulePage(items=[override_out(r) for r in page.items], next_cursor=page.next_cursor)


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
        self, product_id: uuid.UUID, alert_rule_service: AlertRuleService, warehouse_id: uuid.UUID | None = None
    ) -> ProductAlertRule:
        return override_out(await alert_rule_service.get_override(product_id, warehouse_id))

    @put(
        "/",
        operation_id="putProductAlertRule",
        summary="Set a product's alert rule, or one warehouse's with warehouse_id (overrides the default)",
        guards=[write_guard],
        responses={
            201: ResponseSpec(
                data_container=ProductAlertRule, description="The rule was created", generate_examples=False
            ),
            **errors_for(401, 403, 404, 422),
        },
    )
    async def put_rule(
        self,
        product_id: uuid.UUID,
        data: ProductAlertRuleUpdate,
        alert_rule_service: AlertRuleService,
        warehouse_id: uuid.UUID | None = None,
    ) -> Response[ProductAlertRule]:
        rule, created = await alert_rule_service.put_override(product_id, warehouse_id, data)
        return Response(override_out(rule), status_code=201 if created else 200)

    @delete(
        "/",
        operation_id="deleteProductAlertRule",
        summary="Remove a product's (or warehouse's) rule; the default applies again",
        guards=[write_guard],
        responses=errors_for(401, 403, 404, 422),
    )
    async def delete_rule(
        self, product_id: uuid.UUID, alert_rule_service: AlertRuleService, warehouse_id: uuid.UUID | None = None
    ) -> None:
        await alert_rule_service.delete_override(product_id, warehouse_id)


def alert_out(row: AlertRow) -> Alert:
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


def suppression_out(row: SuppressionRow) -> Suppression:
    return Suppression(
        id=row.id,
        reason=row.reason,
        detail=row.detail,
        event_id=row.event_id,
        event_type=row.event_type,
        channel_id=row.channel_id,
        endpoint_id=row.endpoint_id,
        created_at=row.created_at,
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
        alert_service: AlertService,
        status: Literal["open", "resolved"] | None = None,
        product_id: uuid.UUID | None = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> AlertPage:
        page = await alert_service.page(status, product_id, cursor, limit)
        return AlertPage(items=[alert_out(r) for r in page.items], next_cursor=page.next_cursor)

    @get("/{alert_id:uuid}", operation_id="getAlert", summary="One alert", responses=errors_for(401, 404))
    async def get_alert(self, alert_id: uuid.UUID, alert_service: AlertService) -> Alert:
        return alert_out(await alert_service.get(alert_id))


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
        alert_service: AlertService,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> SuppressionPage:
        page = await alert_service.suppressions_page(cursor, limit)
        return SuppressionPage(items=[suppression_out(r) for r in page.items], next_cursor=page.next_cursor)
