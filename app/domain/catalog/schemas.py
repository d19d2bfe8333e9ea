"""Bodies of the catalogue and stock read API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

StockStatus = Literal["in_stock", "low", "out"]


class Product(msgspec.Struct):
    """A product with its stock totals over all its variants and warehouses."""

    id: uuid.UUID
    connection_id: uuid.UUID
    marketplace: str
    external_id: str
    vendor_code: str | None
    title: str | None
    brand: str | None
    subject: str | None
    photo_url: str | None
    total_quantity: int
    in_way_to_client: int | None
    in_way_from_client: int | None
    stock_status: StockStatus
    warehouses: int


class ProductPage(msgspec.Struct):
    items: list[Product]
    next_cursor: str | None = None


class StockCell(msgspec.Struct):
    warehouse_id: uuid.UUID
    warehouse_external_id: str
    warehouse_name: str
    kind: Literal["fbo", "fbs"]
    quantity: int
    in_way_to_client: int | None
    in_way_from_client: int | None
    reserved: int | None
    changed_at: datetime


class Variant(msgspec.Struct):
    id: uuid.UUID
    external_id: str
    size: str | None
    marketplace_size: str | None
    barcodes: list[str]
    total_quantity: int
    stock: list[StockCell]


class ProductDetail(msgspec.Struct):
    """A product with its variants and the stock of each variant in each warehouse."""

    id: uuid.UUID
    connection_id: uuid.UUID
    marketplace: str
    external_id: str
    vendor_code: str | None
    title: str | None
    brand: str | None
    subject: str | None
    photo_url: str | None
    total_quantity: int
    in_way_to_client: int | None
    in_way_from_client: int | None
    stock_status: StockStatus
    last_seen_at: datetime | None
    variants: list[Variant]


class StockHistoryPoint(msgspec.Struct):
    at: datetime
    quantity: int
    variant_id: uuid.UUID
    warehouse_id: uuid.UUID
    in_way_to_client: int | None
    in_way_from_client: int | None


class StockHistory(msgspec.Struct):
    product_id: uuid.UUID
    points: list[StockHistoryPoint]
    truncated: bool = False


class Warehouse(msgspec.Struct):
    id: uuid.UUID
    connection_id: uuid.UUID
    external_id: str
    name: str
    kind: Literal["fbo", "fbs"]
    region: str | None
    total_quantity: int
    variants_in_stock: int


class WarehousePage(msgspec.Struct):
    items: list[Warehouse]
    next_cursor: str | None = None


class SummaryBlock(msgspec.Struct):
    products: int
    total_quantity: int
    in_way_to_client: int
    in_way_from_client: int
    out_of_stock: int
    low_stock: int


class MarketplaceSummary(msgspec.Struct):
    marketplace: str
    summary: SummaryBlock


class WarehouseSummary(msgspec.Struct):
    warehouse_id: uuid.UUID
    name: str
    kind: str
    marketplace: str
    total_quantity: int
    variants_in_stock: int


class StockSummary(msgspec.Struct):
    totals: SummaryBlock
    by_marketplace: list[MarketplaceSummary]
    by_warehouse: list[WarehouseSummary]
    low_stock_threshold_units: int
    definition: str
