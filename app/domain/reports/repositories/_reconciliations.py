"""Stored reconciliations and their rows, and the figures of ours a reconciliation compares."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select, text

from app.db.models import Connection, Product, Variant, Warehouse
from app.db.models.reports import Reconciliation, ReconciliationRow
from app.db.repository import TenantRepository

ROW_COLUMNS = [c.name for c in ReconciliationRow.__table__.columns if c.name != "tenant_id"]
INSERT_BATCH = 5000

# Our order lines of the period by product × variant × place, cancelled included (the cabinet's "Заказали"
# counts them). The place is the warehouse the line was matched to; a line whose warehouse we could not
# match keeps the name it carried and the kind its own type field says.
_OUR_ORDERS = """
    SELECT o.product_id, o.variant_id, coalesce(w.name, o.warehouse_name, '') AS warehouse,
           coalesce(w.kind::text,
                    CASE WHEN o.raw->>'warehouseType' = 'Склад продавца' THEN 'fbs' ELSE 'fbo' END) AS kind,
           count(*)::int
    FROM order_lines o LEFT JOIN warehouses w ON w.id = o.warehouse_id
    WHERE o.tenant_id = :tid AND o.connection_id = :cid AND o.order_date BETWEEN :start AND :end
    GROUP BY 1, 2, 3, 4
"""
_OUR_STOCK = """
    SELECT s.product_id, s.variant_id, w.name, w.kind::text, s.quantity
    FROM stock_levels s JOIN warehouses w ON w.id = s.warehouse_id
    WHERE s.tenant_id = :tid AND s.connection_id = :cid
"""


class ReconciliationRepository(TenantRepository[Reconciliation]):
    model = Reconciliation

    async def page(self, after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Reconciliation]:
        """Newest first."""
        stmt = self.select().order_by(Reconciliation.created_at.desc(), Reconciliation.id.desc()).limit(limit)
        if after is not None:
            created, id_ = after
            stmt = stmt.where(
                (Reconciliation.created_at < created)
                | ((Reconciliation.created_at == created) & (Reconciliation.id < id_))
            )
        return list((await self.session.execute(stmt)).scalars().all())

    async def add_rows(self, reconciliation_id: uuid.UUID, rows: Sequence[dict[str, Any]]) -> None:
        for start in range(0, len(rows), INSERT_BATCH):
            batch = [
                {**r, "tenant_id": self.tenant_id, "reconciliation_id": reconciliation_id}
                for r in rows[start : start + INSERT_BATCH]
            ]
            await self.session.execute(insert(ReconciliationRow), batch)

    async def rows_page(
        self, reconciliation_id: uuid.UUID, after: int | None, limit: int, status: str | None, differences: bool
    ) -> list[Any]:
        stmt = (
            select(*[ReconciliationRow.__table__.c[n] for n in ROW_COLUMNS if n != "reconciliation_id"])
            .where(
                ReconciliationRow.tenant_id == self.tenant_id,
                ReconciliationRow.reconciliation_id == reconciliation_id,
            )
            .order_by(ReconciliationRow.position)
            .limit(limit)
        )
        if after is not None:
            stmt = stmt.where(ReconciliationRow.position > after)
        if status is not None:
            stmt = stmt.where(ReconciliationRow.status == status)
        if differences:
            stmt = stmt.where(
                (ReconciliationRow.status != "matched")
                | (ReconciliationRow.stock_difference != 0)
                | (ReconciliationRow.orders_difference != 0)
            )
        return list((await self.session.execute(stmt)).all())

    # ---- our side -------------------------------------------------------------------------------------------

    async def connection(self, connection_id: uuid.UUID) -> Any | None:
        stmt = select(Connection.id, Connection.marketplace, Connection.name).where(
            Connection.tenant_id == self.tenant_id, Connection.id == connection_id
        )
        return (await self.session.execute(stmt)).first()

    async def marketplace_connections(self, marketplace: str) -> list[Any]:
        stmt = select(Connection.id, Connection.name).where(
            Connection.tenant_id == self.tenant_id, Connection.marketplace == marketplace
        )
        return list((await self.session.execute(stmt)).all())

    async def products(self, connection_id: uuid.UUID) -> list[Any]:
        stmt = select(Product.id, Product.external_id, Product.vendor_code, Product.title).where(
            Product.tenant_id == self.tenant_id, Product.connection_id == connection_id
        )
        return list((await self.session.execute(stmt)).all())

    async def variants(self, connection_id: uuid.UUID) -> list[Any]:
        stmt = select(Variant.id, Variant.product_id, Variant.size, Variant.external_id).where(
            Variant.tenant_id == self.tenant_id, Variant.connection_id == connection_id
        )
        return list((await self.session.execute(stmt)).all())

    async def warehouses(self, connection_id: uuid.UUID) -> list[Any]:
        stmt = select(Warehouse.id, Warehouse.name, Warehouse.kind).where(
            Warehouse.tenant_id == self.tenant_id, Warehouse.connection_id == connection_id
        )
        return list((await self.session.execute(stmt)).all())

    async def our_stock(self, connection_id: uuid.UUID) -> list[Any]:
        """(product, variant, warehouse name, kind, quantity) of every stock row of the connection."""
        params = {"tid": self.tenant_id, "cid": connection_id}
        return list((await self.session.execute(text(_OUR_STOCK), params)).all())

    async def our_orders(self, connection_id: uuid.UUID, start: date, end: date) -> list[Any]:
        """(product, variant, place name, kind, lines) of the connection's order lines placed in [start, end]."""
        params = {"tid": self.tenant_id, "cid": connection_id, "start": start, "end": end}
        return list((await self.session.execute(text(_OUR_ORDERS), params)).all())
