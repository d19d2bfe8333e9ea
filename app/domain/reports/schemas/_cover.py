"""Bodies of the analytics API. Every derived figure carries its formula, window and source (rule 8)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

import msgspec

FORMULA = "days_of_cover = available_units / (units_ordered_in_window / window_days)"
Source = Literal["orders", "stock_decreases", "none"]


class CoverFigure(msgspec.Struct):
    available: int | None
    orders: int | None
    velocity_per_day: float | None
    days_of_cover: float | None
    note: str | None = None


class VariantCover(msgspec.Struct):
    variant_id: uuid.UUID
    external_id: str
    size: str | None
    cover: CoverFigure


class WarehouseCover(msgspec.Struct):
    warehouse_id: uuid.UUID
    name: str
    kind: str
    cover: CoverFigure


class Window(msgspec.Struct):
    days: int
    start: date
    end: date
    timezone: str = "Europe/Moscow"


class Method(msgspec.Struct):
    formula: str
    source: Source
    source_detail: str
    counts_cancelled: bool
    window: Window


class DaysOfCover(msgspec.Struct):
    product_id: uuid.UUID
    method: Method
    product: CoverFigure
    variants: list[VariantCover]
    warehouses: list[WarehouseCover]
