"""Every SQL statement of the reports area: products, stock cells, order lines and stock decreases."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import OrderLine, Product, StockLevel, Variant, Warehouse
from app.domain.reports.schemas import Window


class ReportRepository:
    """Tenant-scoped reads of the figures reports are built from (every statement filters by tenant)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def products_page(
        self, *, connection_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
    ) -> list[Product]:
        """Products by id (the report's row order), after ``after``."""
        stmt = select(Product).where(Product.tenant_id == self.tenant_id).order_by(Product.id).limit(limit)
        if connection_id is not None:
            stmt = stmt.where(Product.connection_id == connection_id)
        if after is not None:
            stmt = stmt.where(Product.id > after)
        return list((await self.session.execute(stmt)).scalars().all())

    async def products_with_stock(self, limit: int) -> list[Any]:
        """(id, connection_id, vendor_code, external_id, total) of products that have stock rows."""
        totals = (
            select(StockLevel.product_id, func.sum(StockLevel.quantity).label("total"))
            .where(StockLevel.tenant_id == self.tenant_id)
            .group_by(StockLevel.product_id)
            .subquery()
        )
        stmt = (
            select(Product.id, Product.connection_id, Product.vendor_code, Product.external_id, totals.c.total)
            .join(totals, totals.c.product_id == Product.id)
            .where(Product.tenant_id == self.tenant_id)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).all())

    async def product_connection(self, product_id: uuid.UUID) -> Any | None:
        """(id, connection_id) of one product, or None."""
        stmt = select(Product.id, Product.connection_id).where(
            Product.tenant_id == self.tenant_id, Product.id == product_id
        )
        return (await self.session.execute(stmt)).first()

    async def variants(self, product_id: uuid.UUID) -> list[Any]:
        """(id, external_id, size) of a product's variants, by external id."""
        stmt = (
            select(Variant.id, Variant.external_id, Variant.size)
            .where(Variant.tenant_id == self.tenant_id, Variant.product_id == product_id)
            .order_by(Variant.external_id)
        )
        return list((await self.session.execute(stmt)).all())

    async def connection_warehouses(self, connection_id: uuid.UUID) -> list[Any]:
        """(id, name, kind) of a connection's warehouses."""
        stmt = select(Warehouse.id, Warehouse.name, Warehouse.kind).where(
            Warehouse.tenant_id == self.tenant_id, Warehouse.connection_id == connection_id
        )
        return list((await self.session.execute(stmt)).all())

    async def warehouses(self, ids: set[uuid.UUID]) -> list[Any]:
        """(id, name, kind) of the given warehouses, by kind then name (the report's column order)."""
        if not ids:
            return []
        stmt = (
            select(Warehouse.id, Warehouse.name, Warehouse.kind)
            .where(Warehouse.tenant_id == self.tenant_id, Warehouse.id.in_(ids))
            .order_by(Warehouse.kind, Warehouse.name)
        )
        return list((await self.session.execute(stmt)).all())

    async def stock_cells(self, product_ids: list[uuid.UUID]) -> list[Any]:
        """(product, variant, warehouse, quantity, in way to / from client) of the products' stock rows."""
        if not product_ids:
            return []
        stmt = select(
            StockLevel.product_id,
            StockLevel.variant_id,
            StockLevel.warehouse_id,
            StockLevel.quantity,
            StockLevel.in_way_to_client,
            StockLevel.in_way_from_client,
        ).where(StockLevel.tenant_id == self.tenant_id, StockLevel.product_id.in_(product_ids))
        return list((await self.session.execute(stmt)).all())

    async def connections_with_orders(self, connection_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """The connections that have stored order lines (their velocity comes from orders)."""
        rows = await self.session.execute(
            select(OrderLine.connection_id)
            .where(OrderLine.tenant_id == self.tenant_id, OrderLine.connection_id.in_(connection_ids))
            .group_by(OrderLine.connection_id)
        )
        return {r[0] for r in rows}

    async def order_counts(self, product_ids: list[uuid.UUID], window: Window, include_cancelled: bool) -> list[Any]:
        """(product, variant, warehouse, lines) — one order line per WB srid."""
        cond = [
            OrderLine.tenant_id == self.tenant_id,
            OrderLine.product_id.in_(product_ids),
            OrderLine.order_date >= window.start,
            OrderLine.order_date <= window.end,
        ]
        if not include_cancelled:
            cond.append(OrderLine.is_cancel.is_(False))
        stmt = (
            select(OrderLine.product_id, OrderLine.variant_id, OrderLine.warehouse_id, func.count())
            .where(and_(*cond))
            .group_by(OrderLine.product_id, OrderLine.variant_id, OrderLine.warehouse_id)
        )
        return list((await self.session.execute(stmt)).all())

    async def decrease_counts(self, product_ids: list[uuid.UUID], start: datetime, end: datetime) -> list[Any]:
        """(product, variant, warehouse, units) that left stock in [start, end): decreases between history
        points, restocks excluded (the fallback where a connection has no order lines)."""
        rows = await self.session.execute(
            text(
                """
                SELECT product_id, variant_id, warehouse_id, sum(greatest(prev - quantity, 0))::int
                FROM (
                    SELECT product_id, variant_id, warehouse_id, at, quantity,
                           lag(quantity) OVER (PARTITION BY variant_id, warehouse_id ORDER BY at, id) AS prev
                    FROM stock_history WHERE tenant_id = :tid AND product_id = ANY(:pids) AND at < :end
                ) h
                WHERE at >= :start AND prev IS NOT NULL
                GROUP BY product_id, variant_id, warehouse_id
                """
            ),
            {"tid": self.tenant_id, "pids": product_ids, "start": start, "end": end},
        )
        return list(rows.all())
