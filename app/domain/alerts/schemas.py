"""Bodies of the alerts API: rules (default and overrides), alerts, and the suppression log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

HHMM = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["22:00"])]
Units = Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]
Days = Annotated[float, msgspec.Meta(gt=0, le=3650)]
WindowDays = Literal[7, 14, 30]
HysteresisUnits = Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]
HysteresisDays = Annotated[float, msgspec.Meta(ge=0, le=3650)]
MaxAlertsPerSync = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=100_000,
        description=(
            "A sync that would send more per-product alerts (opened, escalated, restored) than this sends one "
            "stock.digest instead; 0 sends every sync's alerts as a digest. A connection's first sync (and the "
            "first after a long pause) always opens its alerts silently and sends one digest."
        ),
    ),
]


class QuietHours(msgspec.Struct, forbid_unknown_fields=True):
    """Local wall-clock times in the organization's time zone; ``start`` after ``end`` wraps midnight."""

    start: HHMM
    end: HHMM


class AlertRuleDefaultUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Replaces the organization's default rule. Set ``units_below`` and/or ``days_of_cover_below``."""

    units_below: Units | None = None
    days_of_cover_below: Days | None = None
    cover_window_days: WindowDays = 14
    hysteresis_units: HysteresisUnits = 2
    hysteresis_days: HysteresisDays = 1.0
    enabled: bool = True
    quiet_hours: QuietHours | None = None
    max_alerts_per_sync: MaxAlertsPerSync = 20


class AlertRuleDefault(msgspec.Struct):
    enabled: bool
    units_below: int | None
    days_of_cover_below: float | None
    cover_window_days: int
    hysteresis_units: int
    hysteresis_days: float
    quiet_hours: QuietHours | None
    max_alerts_per_sync: int
    timezone: str
    configured: bool
    definition: str
    updated_at: datetime | None = None


class ProductAlertRuleUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Overrides the default for one product (or, with ``?warehouse_id=``, one product × warehouse).

    ``enabled: false`` mutes the product (or place): no alerts open for it.
    """

    units_below: Units | None = None
    days_of_cover_below: Days | None = None
    cover_window_days: WindowDays = 14
    hysteresis_units: HysteresisUnits = 2
    hysteresis_days: HysteresisDays = 1.0
    enabled: bool = True


class ProductAlertRule(msgspec.Struct):
    id: uuid.UUID
    product_id: uuid.UUID
    warehouse_id: uuid.UUID | None
    enabled: bool
    units_below: int | None
    days_of_cover_below: float | None
    cover_window_days: int
    hysteresis_units: int
    hysteresis_days: float
    created_at: datetime
    updated_at: datetime


class ProductAlertRulePage(msgspec.Struct):
    items: list[ProductAlertRule]
    next_cursor: str | None = None


class AlertProduct(msgspec.Struct):
    id: uuid.UUID
    external_id: str
    vendor_code: str | None
    title: str | None
    marketplace: str


class Alert(msgspec.Struct):
    id: uuid.UUID
    status: Literal["open", "resolved"]
    level: Literal["low", "out"]
    connection_id: uuid.UUID
    product: AlertProduct
    warehouse_id: uuid.UUID | None
    warehouse_name: str | None
    quantity: int
    quantity_at_open: int
    days_of_cover: float | None
    rule_scope: Literal["default", "product", "warehouse"]
    threshold: dict[str, Any]
    opened_at: datetime
    resolved_at: datetime | None
    resolution: str | None


class AlertPage(msgspec.Struct):
    items: list[Alert]
    next_cursor: str | None = None


class Suppression(msgspec.Struct):
    id: uuid.UUID
    reason: str
    detail: str
    event_id: uuid.UUID | None
    event_type: str | None
    channel_id: uuid.UUID | None
    endpoint_id: uuid.UUID | None
    created_at: datetime


class SuppressionPage(msgspec.Struct):
    items: list[Suppression]
    next_cursor: str | None = None
