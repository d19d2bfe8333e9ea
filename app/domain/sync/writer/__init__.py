"""Writes a normalised snapshot: catalogue, warehouses, a full stock snapshot with history, order lines.

Everything goes through a temporary table filled with COPY (COPY straight into an RLS table is refused)
and one set-based INSERT … ON CONFLICT per table, sorted by key so two writers never deadlock, with an
``IS DISTINCT FROM`` guard so re-syncing identical data writes nothing.

One module per thing written: ``catalogue`` (products, variants, warehouses), ``stock`` (the snapshot and
rule 3), ``history`` (the points those statements write), ``orders`` (raw order lines, the source of
velocity). ``SnapshotWriter`` is the one door the sync pipeline uses, inside the caller's transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.sync.model import CatalogItem, OrderLines, Snapshot, StockRow
from app.domain.sync.writer import catalogue, orders, stock

__all__ = ["SnapshotWriter", "WriteCounts"]


@dataclass
class WriteCounts:
    products: int = 0
    variants: int = 0
    warehouses: int = 0
    stock_rows: int = 0
    changes: int = 0
    zeroed: int = 0
    history_points: int = 0
    orders: int = 0
    orders_written: int = 0
    unmatched_stock_rows: int = 0
    archived: int = 0  # products the marketplace no longer lists, archived by this sync (Ozon)
    products_left_out: int = 0  # by the plan's product limit (their stored data is kept, not synced)
    extra: dict[str, Any] = field(default_factory=dict)


class SnapshotWriter:
    """Writes one connection's snapshot in the session's transaction (it never commits)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, connection_id: uuid.UUID, marketplace: str):
        self.session = session
        self.tenant_id = tenant_id
        self.connection_id = connection_id
        self.marketplace = marketplace

    async def write_catalog(self, items: list[CatalogItem]) -> tuple[int, int]:
        """Upsert products and their variants; returns how many of each were inserted or changed."""
        return await catalogue.write_catalog(self.session, self.tenant_id, self.connection_id, self.marketplace, items)

    async def ensure_stub_variants(self, rows: list[StockRow]) -> None:
        """Stock for a variant the catalogue has not returned (yet): keep it, under its marketplace ids."""
        await catalogue.ensure_stub_variants(self.session, self.tenant_id, self.connection_id, self.marketplace, rows)

    async def write_warehouses(self, snapshot: Snapshot) -> dict[str, uuid.UUID]:
        return await catalogue.write_warehouses(self.session, self.tenant_id, self.connection_id, snapshot.warehouses)

    async def write_stock(self, snapshot: Snapshot, run_id: uuid.UUID, at: datetime, counts: WriteCounts) -> None:
        """Upsert the snapshot; absent rows of covered sources become 0 (rule 3); history only for changes."""
        done = await stock.write_stock(self.session, self.tenant_id, self.connection_id, snapshot, run_id, at)
        counts.stock_rows = done.stock_rows
        counts.unmatched_stock_rows = done.unmatched
        counts.changes = done.changes
        counts.zeroed = done.zeroed
        counts.history_points = done.history_points
        counts.archived = done.archived

    async def write_orders(self, items: OrderLines, counts: WriteCounts) -> None:
        """Upsert raw order lines by their line id (WB srid); cancellations update the stored line."""
        done = await orders.write_orders(self.session, self.tenant_id, self.connection_id, items)
        counts.orders = done.orders
        counts.orders_written = done.written
