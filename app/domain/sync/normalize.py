"""The data-correctness rules of SPEC §5, applied to a fetched snapshot before anything is written."""

from __future__ import annotations

import structlog

from app.domain.sync.model import Snapshot, StockRow, WarehouseItem
from app.integrations.warehouses import PSEUDO_WAREHOUSES, is_pseudo_warehouse

log = structlog.get_logger(__name__)
__all__ = ["PSEUDO_WAREHOUSES", "is_pseudo_warehouse", "normalize", "warehouse_key"]


def warehouse_key(external_id: str | int | None, name: str | None) -> str:
    """Rule 4: the marketplace's id, or the exact trimmed name where no id exists — never a fuzzy match."""
    if external_id is not None and str(external_id).strip() != "":
        return str(external_id).strip()
    if not name or not name.strip():
        raise ValueError("a warehouse needs an id or a name")
    return "name:" + name.strip()


def normalize(snapshot: Snapshot) -> Snapshot:
    """Drop pseudo-warehouses (2), deduplicate warehouses by id (4), keep one row per variant × warehouse
    by id (6), and never invent values (5): rows are kept exactly as reported."""
    warehouses: dict[str, WarehouseItem] = {}
    pseudo_ids: set[str] = set()
    for wh in snapshot.warehouses:
        if is_pseudo_warehouse(wh.name):
            pseudo_ids.add(wh.external_id)
            continue
        existing = warehouses.get(wh.external_id)
        if existing is None or (existing.name != wh.name and wh.name):
            warehouses[wh.external_id] = wh
    rows: dict[tuple[str, str], StockRow] = {}
    duplicates = 0
    for row in snapshot.stock:
        if row.warehouse_external_id in pseudo_ids or row.warehouse_external_id not in warehouses:
            continue
        key = (row.variant_external_id, row.warehouse_external_id)
        if key in rows:
            duplicates += 1
        rows[key] = row
    if duplicates:
        log.warning("sync.duplicate_stock_rows", count=duplicates)
    snapshot.warehouses = list(warehouses.values())
    snapshot.stock = [rows[k] for k in sorted(rows)]
    return snapshot


def resolve_order_warehouses(snapshot: Snapshot, known: dict[str, str]) -> None:
    """Orders name their warehouse but carry no id: match the exact trimmed name (rule 4), else add a
    name-keyed warehouse whose kind comes from the order's own type field — the warehouse set of a product
    is the union of its stock and order sources (rule 3). ``known`` maps stored warehouse names to ids."""
    if not snapshot.orders:
        return
    by_name = dict(known)
    by_name.update({w.name: w.external_id for w in snapshot.warehouses})
    # Once per name, not per line: a line that names its warehouse's id (Ozon) keeps it, that is its identity;
    # the others take the id resolved for their name as they are read (``OrderLines.warehouse_ids``).
    for name, kind in snapshot.orders.unplaced_warehouses().items():
        ext = by_name.get(name)
        if ext is None and kind:
            ext = "name:" + name
            snapshot.warehouses.append(WarehouseItem(ext, name, kind, None))
            by_name[name] = ext
        if ext is not None:
            snapshot.orders.warehouse_ids[name] = ext
