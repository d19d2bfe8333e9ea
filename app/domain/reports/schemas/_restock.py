"""Restock recommendations per product × warehouse, with every input of the formula."""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec

from app.domain.reports.schemas._cover import Source, Window

RESTOCK_FORMULA = "units_to_ship = max(0, ceil(velocity_per_day × (lead_time_days + safety_days)) − available)"
VELOCITY_FORMULA = "velocity_per_day = units_ordered_in_window / window_days"
SettingsSource = Literal["organization", "product"]


class RestockTargets(msgspec.Struct):
    lead_time_days: int
    safety_days: int


class RestockMethod(msgspec.Struct):
    formula: str
    velocity_formula: str
    days_of_cover_formula: str
    window_days: int  # the velocity the recommendation uses (7, 14 or 30)
    windows: list[Window]
    source: Source
    source_detail: str
    counts_cancelled: bool
    organization: RestockTargets


class RestockRow(msgspec.Struct):
    """``available`` null: no stock row at this place (orders only), so nothing is recommended (rule 5)."""

    product_id: uuid.UUID
    marketplace: str
    external_id: str
    vendor_code: str | None
    title: str | None
    brand: str | None
    subject: str | None
    warehouse_id: uuid.UUID
    warehouse_name: str
    warehouse_kind: str
    available: int | None
    orders_7: int
    orders_14: int
    orders_30: int
    velocity_7: float
    velocity_14: float
    velocity_30: float
    velocity_source: Source
    velocity_per_day: float
    days_of_cover: float | None
    lead_time_days: int
    safety_days: int
    target_days: int
    settings_source: SettingsSource
    target_units: int
    units_to_ship: int | None
    note: str | None = None


class RestockReport(msgspec.Struct):
    method: RestockMethod
    rows: list[RestockRow]
    next_cursor: str | None = None
