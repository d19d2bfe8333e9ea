"""Stock by day: a product (× size) × date matrix of end-of-day stock, days out of stock, lost orders."""

from __future__ import annotations

import uuid
from datetime import date

import msgspec

from app.domain.reports.schemas._stock import Per

VALUE_RULE = (
    "end-of-day stock: the last stock point at or before the end of each day in the organization's time zone, "
    "summed over the row's warehouses and carried forward from earlier days; null before the first point we hold"
)
LOST_ORDERS_FORMULA = "lost_orders_estimate = days_out_of_stock × orders / days_in_stock"


class StockByDayMethod(msgspec.Struct):
    timezone: str
    date_from: date = msgspec.field(name="from")
    date_to: date = msgspec.field(name="to")
    value: str = VALUE_RULE
    days_out_of_stock: str = "days whose end-of-day stock was 0 (days with unknown stock are not counted)"
    lost_orders_formula: str = LOST_ORDERS_FORMULA
    orders_source: str = "marketplace order lines placed on the range's days (Moscow time, as the cabinet counts)"
    counts_cancelled: bool = False


class StockByDayRow(msgspec.Struct):
    """``stock`` has one value per date of ``dates``; ``days_in_stock`` are days that ended with stock > 0."""

    product_id: uuid.UUID
    marketplace: str
    external_id: str
    vendor_code: str | None
    title: str | None
    brand: str | None
    subject: str | None
    stock: list[int | None]
    days_out_of_stock: int
    days_in_stock: int
    days_unknown: int
    orders: int
    lost_orders_estimate: float | None
    variant_id: uuid.UUID | None = None
    variant_external_id: str | None = None
    size: str | None = None


class StockByDay(msgspec.Struct):
    method: StockByDayMethod
    dates: list[date]
    rows: list[StockByDayRow]
    next_cursor: str | None = None
    per: Per = "size"
