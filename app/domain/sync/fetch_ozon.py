"""Fetch one Ozon seller into a neutral snapshot."""

from __future__ import annotations

from app.domain.sync.model import CatalogItem, Snapshot, StockRow, VariantItem, WarehouseItem
from app.domain.sync.normalize import is_pseudo_warehouse, warehouse_key
from app.integrations.ozon.client import OzonClient
from app.integrations.ozon.schemas import ProductInfo


def _skus(info: ProductInfo) -> list[str]:
    skus: list[str] = []
    for sku in [*(s.sku for s in info.sources), info.sku]:
        if sku and str(sku) not in skus:
            skus.append(str(sku))
    return skus


async def fetch_catalog(client: OzonClient, snapshot: Snapshot) -> None:
    """The whole catalogue every time (Ozon has no change cursor): product ids, then their details. A product
    Ozon lists as archived is left out like one it no longer lists: the writer marks it archived."""
    ids: list[int] = []
    async for items, _ in client.product_list():
        ids.extend(i.product_id for i in items if not i.archived)
    for info in await client.product_info(ids):
        if info.is_archived or info.is_autoarchived:
            continue
        snapshot.catalog.append(
            CatalogItem(
                external_id=str(info.id),
                vendor_code=info.offer_id or None,
                title=info.name or None,
                photo_url=info.primary_image[0] if info.primary_image else None,
                variants=[VariantItem(external_id=sku, barcodes=list(info.barcodes)) for sku in _skus(info)],
            )
        )
    snapshot.catalogue_complete = True
    snapshot.catalogue_full = True


async def fetch_fbo(client: OzonClient, snapshot: Snapshot) -> None:
    """Stock on Ozon's warehouses: available = present − reserved, as the seller cabinet shows it."""
    for p in await client.fbo_stocks_by_warehouse():
        # The FBO stock method carries warehouse ids only; the label is ours, the identity is Ozon's id.
        name = f"Ozon warehouse {p.warehouse_id}"
        key = warehouse_key(p.warehouse_id, name)
        snapshot.warehouses.append(WarehouseItem(key, name, "fbo", None))
        snapshot.stock.append(
            StockRow(str(p.product_id), str(p.sku), key, max(0, p.present - p.reserved), reserved=p.reserved)
        )
    snapshot.covered_fbo = True


async def fetch_fbs(client: OzonClient, snapshot: Snapshot) -> None:
    """The seller's own warehouses (FBS/rFBS) and their per-warehouse stock."""
    keys: set[str] = set()
    for wh in await client.warehouses():
        key = warehouse_key(wh.warehouse_id, wh.name)
        keys.add(key)
        snapshot.warehouses.append(WarehouseItem(key, wh.name, "fbs", None))
    for p in await client.fbs_stocks_by_warehouse():
        if is_pseudo_warehouse(p.warehouse_name):
            continue
        key = warehouse_key(p.warehouse_id, p.warehouse_name)
        if key not in keys:
            keys.add(key)
            snapshot.warehouses.append(WarehouseItem(key, p.warehouse_name or f"Warehouse {p.warehouse_id}", "fbs"))
        available = p.free_stock if p.free_stock is not None else max(0, p.present - p.reserved)
        snapshot.stock.append(StockRow(str(p.product_id), str(p.sku), key, available, reserved=p.reserved))
    snapshot.covered_fbs |= keys
