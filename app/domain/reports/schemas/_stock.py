"""The stock report as JSON: a row per product (or per size), then a block per warehouse."""

from __future__ import annotations

import uuid
from typing import Literal

import msgspec

from app.domain.reports.schemas._cover import Method

StockStatus = Literal["in_stock", "low", "out"]
Per = Literal["product", "size"]


class ReportWarehouse(msgspec.Struct):
    warehouse_id: uuid.UUID
    name: str
    kind: str
    connection_id: uuid.UUID | None = None


class ReportCell(msgspec.Struct):
    """One warehouse of a row: ``stock`` null where we hold no stock row there (orders only), never 0."""

    warehouse_id: uuid.UUID
    stock: int | None
    orders: int
    days_of_cover: float | None
    status: StockStatus | None = None


class ReportRow(msgspec.Struct):
    """Totals are sums of exactly the row's cells (rule 7). With ``per=size`` a row is one size (variant);
    order lines the marketplace did not tie to a size come in a row of their own with ``size: null``."""

    product_id: uuid.UUID
    marketplace: str
    external_id: str
    vendor_code: str | None
    brand: str | None
    subject: str | None
    title: str | None
    in_way_to_client: int | None
    in_way_from_client: int | None
    orders: int
    total_stock: int
    days_of_cover: float | None
    warehouses: list[ReportCell]
    status: StockStatus = "in_stock"
    variant_id: uuid.UUID | None = None
    variant_external_id: str | None = None
    size: str | None = None


class StockReport(msgspec.Struct):
    """One page of the stock report. ``warehouses`` lists the warehouses this page's rows mention;
    ``low_units`` is the threshold behind ``status`` (the organization's default alert rule)."""

    method: Method
    warehouses: list[ReportWarehouse]
    rows: list[ReportRow]
    next_cursor: str | None = None
    per: Per = "product"
    low_units: int = 0
