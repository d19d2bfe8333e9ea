"""Fetch one Ozon seller into a neutral snapshot."""

from __future__ import annotations

from typing import Any

from app.domain.sync.model import CatalogItem, Snapshot, StockRow, VariantItem, WarehouseItem
from app.domain.sync.normalize import is_pseudo_warehouse, warehouse_key
from app.integrations.ozon.client import OzonClient

INFO_CHUNK = 1000


async def fetch_catalog(client: OzonClient, snapshot: Snapshot) -> None:
    """The whole catalogue every time (Ozon has no change cursor): product ids, then their details."""
    ids: list[int] = []
    async for items in client.product_list():
        ids.extend(int(i.product_id) for i in items)
    for start in range(0, len(ids), INFO_CHUNK):
        for info in await client.product_info(ids[start : start + INFO_CHUNK]):
            skus = _skus(info)
            barcodes = list(getattr(info, "barcodes", None) or [])
            snapshot.catalog.append(
                CatalogItem(
                    external_id=str(info.id),
                    vendor_code=info.offer_id,
                    title=info.name,
                    photo_url=(getattr(info, "primary_image", None) or [None])[0]
                    if isinstance(getattr(info, "primary_image", None), list)
                    else getattr(info, "primary_image", None),
                    variants=[VariantItem(external_id=str(sku), barcodes=barcodes) for sku in skus],
                )
            )
    snapshot.catalogue_complete = True


def _skus(info: Any) -> list[int]:
    skus: list[int] = []
    for source in getattr(info, "sources", None) or []:
        sku = getattr(source, "sku", None)
        if sku and sku not in skus:
            skus.append(int(sku))
    for attr in ("sku", "fbo_sku", "fbs_sku"):
        sku = getattr(info, attr, None)
        if sku and int(sku) not in skus:
            skus.append(int(sku))
    return skus


async def fetch_fbo(client: OzonClient, snapshot: Snapshot) -> None:
    """Stock on Ozon's warehouses: available = present − reserved (as the cabinet shows it)."""
    async for products in client.fbo_stocks_by_warehouse():
        for p in products:
            name = getattr(p, "warehouse_name", None) or f"Ozon warehouse {p.warehouse_id}"
            if is_pseudo_warehouse(name):
                continue
            key = warehouse_key(p.warehouse_id, name)
            snapshot.warehouses.append(WarehouseItem(key, name, "fbo", None))
            snapshot.stock.append(
                StockRow(str(p.product_id), str(p.sku), key, max(0, int(p.present) - int(p.reserved)),
                         reserved=int(p.reserved))
            )
    snapshot.covered_fbo = True


async def fetch_fbs(client: OzonClient, snapshot: Snapshot) -> None:
    """The seller's own warehouses (FBS/rFBS) and their per-warehouse stock."""
    warehouses = await client.warehouses()
    keys: set[str] = set()
    for wh in warehouses:
        key = warehouse_key(wh.warehouse_id, wh.name)
        keys.add(key)
        snapshot.warehouses.append(WarehouseItem(key, wh.name, "fbs", None))
    async for products in client.fbs_stocks_by_warehouse():
        for p in products:
            key = warehouse_key(p.warehouse_id, p.warehouse_name)
            if key not in keys:
                keys.add(key)
                snapshot.warehouses.append(WarehouseItem(key, p.warehouse_name, "fbs", None))
            free = getattr(p, "free_stock", None)
            available = int(free) if free is not None else max(0, int(p.present) - int(p.reserved))
            snapshot.stock.append(StockRow(str(p.product_id), str(p.sku), key, available, reserved=int(p.reserved)))
    snapshot.covered_fbs |= keys
