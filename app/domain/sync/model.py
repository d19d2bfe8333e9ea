"""Marketplace-neutral shapes the fetchers produce and the writer consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.domain.sync.order_lines import OrderItem, OrderLines

__all__ = ["CatalogItem", "OrderItem", "OrderLines", "Snapshot", "StockRow", "VariantItem", "WarehouseItem"]


@dataclass(slots=True)
class VariantItem:
    external_id: str
    size: str | None = None
    marketplace_size: str | None = None
    barcodes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CatalogItem:
    external_id: str
    vendor_code: str | None
    title: str | None
    brand: str | None = None
    subject: str | None = None
    photo_url: str | None = None
    variants: list[VariantItem] = field(default_factory=list)


@dataclass(slots=True)
class WarehouseItem:
    external_id: str
    name: str
    kind: str  # "fbo" | "fbs", from API fields (the endpoint or a type field), never from the name
    region: str | None = None


@dataclass(slots=True)
class StockRow:
    product_external_id: str
    variant_external_id: str
    warehouse_external_id: str
    quantity: int
    in_way_to_client: int | None = None
    in_way_from_client: int | None = None
    reserved: int | None = None


@dataclass
class Snapshot:
    """What one sync fetched. ``covered`` names the stock sources that answered completely: only warehouses
    of a covered source take part in "absent now → zero now" (a failed source never zeroes anything)."""

    catalog: list[CatalogItem] = field(default_factory=list)
    warehouses: list[WarehouseItem] = field(default_factory=list)
    stock: list[StockRow] = field(default_factory=list)
    # The order lines, compressed a chunk at a time (``order_lines``); None = the orders stage failed or was skipped.
    orders: OrderLines | None = None
    covered_fbo: bool = False  # every marketplace-operated warehouse was reported
    covered_fbs: set[str] = field(default_factory=set)  # seller warehouses fully read
    catalogue_cursor: dict[str, Any] | None = None
    orders_cursor: str | None = None  # WB: the newest lastChangeDate seen (Moscow time, as WB prints it)
    catalogue_complete: bool = False
    # The catalogue lists every product the seller has on sale, not only changes (Ozon): a stored product it
    # no longer returns was deleted or archived on the marketplace (only with ``catalogue_complete``).
    catalogue_full: bool = False
    errors: list[str] = field(default_factory=list)
    calls: int = 0
    # The plan's product limit: the products (marketplace ids) this sync keeps; None = all of them.
    limited_to: frozenset[str] | None = None
