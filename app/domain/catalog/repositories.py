"""Every read query of the catalogue (Core selects on the hot paths, all scoped by tenant)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.models import Connection, Product, StockHistory, StockLevel, Warehouse
from app.db.reads import read_rows

HISTORY_LIMIT = 10_000

# The product page in one round trip: ``st_product_page`` (migration 0005) scopes row-level security to the
# tenant for its own statement and returns one row per variant × warehouse cell (a variant without stock
# comes once with NULL cell columns; a product without variants once with NULL variant columns), ordered
# by variant, then warehouse kind and name. Totals are summed from exactly these cells by the caller
# (rule 7). Every table is also filtered by tenant inside it.
PRODUCT_PAGE_SQL = "SELECT * FROM st_product_page($1, $2)"


async def product_page(engine: AsyncEngine, tenant_id: uuid.UUID, product_id: uuid.UUID) -> list[Any]:
    """The rows of one product's page (``PRODUCT_PAGE_SQL``); empty when there is no such product."""
    return await read_rows(engine, PRODUCT_PAGE_SQL, tenant_id, product_id)


def stock_totals(tenant_id: uuid.UUID) -> Any:
    """Per product: totals derived from exactly the rows the breakdown shows (rule 7)."""
    return (
        select(
            StockLevel.product_id.label("product_id"),
            func.coalesce(func.sum(StockLevel.quantity), 0).label("total"),
            func.sum(StockLevel.in_way_to_client).label("to_client"),
            func.sum(StockLevel.in_way_from_client).label("from_client"),
            func.count(func.distinct(StockLevel.warehouse_id)).filter(StockLevel.quantity > 0).label("warehouses"),
        )
        .where(StockLevel.tenant_id == tenant_id)
        .group_by(StockLevel.product_id)
        .subquery("totals")
    )


class CatalogRepository:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _products(self) -> tuple[Any, Any]:
        # Per product, computed only for the products the page actually returns (a LATERAL subquery on the
        # product index), never by aggregating the whole tenant's stock for every request.
        totals = (
            select(
                func.coalesce(func.sum(StockLevel.quantity), 0).label("total"),
                func.sum(StockLevel.in_way_to_client).label("to_client"),
                func.sum(StockLevel.in_way_from_client).label("from_client"),
                func.count(func.distinct(StockLevel.warehouse_id)).filter(StockLevel.quantity > 0).label("warehouses"),
            )
            .where(StockLevel.tenant_id == self.tenant_id, StockLevel.product_id == Product.id)
            .lateral("totals")
        )
        stmt = (
            select(
                Product.id,
                Product.connection_id,
                Product.marketplace,
                Product.external_id,
                Product.vendor_code,
                Product.title,
                Product.brand,
                Product.subject,
                Product.photo_url,
                func.coalesce(totals.c.total, 0).label("total"),
                totals.c.to_client,
                totals.c.from_client,
                func.coalesce(totals.c.warehouses, 0).label("warehouses"),
            )
            .select_from(Product)
            .join(totals, true())
            .where(Product.tenant_id == self.tenant_id)
        )
        return stmt, totals

    async def list_products(
        self,
        *,
        limit: int,
        after: uuid.UUID | None,
        connection_id: uuid.UUID | None,
        marketplace: str | None,
        search: str | None,
        stock_status: str | None,
        low_units: int,
    ) -> list[Any]:
        stmt, totals = self._products()
        total = func.coalesce(totals.c.total, 0)
        if connection_id is not None:
            stmt = stmt.where(Product.connection_id == connection_id)
        if marketplace is not None:
            stmt = stmt.where(Product.marketplace == marketplace)
        if search:
            term = search.strip().lower()
            stmt = stmt.where(
                or_(
                    Product.external_id == search.strip(),
                    Product.search_text.contains(term, autoescape=True),
                )
            )
        if stock_status == "out":
            stmt = stmt.where(total <= 0)
        elif stock_status == "low":
            stmt = stmt.where(and_(total > 0, total < low_units))
        elif stock_status == "in_stock":
            stmt = stmt.where(total >= low_units)
        if after is not None:
            stmt = stmt.where(Product.id > after)
        stmt = stmt.order_by(Product.id).limit(limit)
        return list((await self.session.execute(stmt)).all())

    async def get_product(self, product_id: uuid.UUID) -> Any | None:
        stmt, _ = self._products()
        stmt = stmt.add_columns(Connection.last_success_at).join(Connection, Connection.id == Product.connection_id)
        return (await self.session.execute(stmt.where(Product.id == product_id))).first()

    async def history(
        self,
        product_id: uuid.UUID,
        start: datetime | None,
        end: datetime | None,
        warehouse_id: uuid.UUID | None,
        variant_id: uuid.UUID | None,
    ) -> list[Any]:
        stmt = select(
            StockHistory.at,
            StockHistory.quantity,
            StockHistory.variant_id,
            StockHistory.warehouse_id,
            StockHistory.in_way_to_client,
            StockHistory.in_way_from_client,
        ).where(StockHistory.tenant_id == self.tenant_id, StockHistory.product_id == product_id)
        if start is not None:
            stmt = stmt.where(StockHistory.at >= start)
        if end is not None:
            stmt = stmt.where(StockHistory.at <= end)
        if warehouse_id is not None:
            stmt = stmt.where(StockHistory.warehouse_id == warehouse_id)
        if variant_id is not None:
            stmt = stmt.where(StockHistory.variant_id == variant_id)
        stmt = stmt.order_by(StockHistory.at, StockHistory.id).limit(HISTORY_LIMIT + 1)
        return list((await self.session.execute(stmt)).all())

    async def warehouses(self, connection_id: uuid.UUID | None) -> list[Any]:
        agg = (
            select(
                StockLevel.warehouse_id,
                func.coalesce(func.sum(StockLevel.quantity), 0).label("total"),
                func.count().filter(StockLevel.quantity > 0).label("in_stock"),
            )
            .where(StockLevel.tenant_id == self.tenant_id)
            .group_by(StockLevel.warehouse_id)
            .subquery()
        )
        stmt = (
            select(
                Warehouse.id,
                Warehouse.connection_id,
                Warehouse.external_id,
                Warehouse.name,
                Warehouse.kind,
                Warehouse.region,
                func.coalesce(agg.c.total, 0),
                func.coalesce(agg.c.in_stock, 0),
            )
            .outerjoin(agg, agg.c.warehouse_id == Warehouse.id)
            .where(Warehouse.tenant_id == self.tenant_id)
            .order_by(Warehouse.kind, Warehouse.name, Warehouse.id)
        )
        if connection_id is not None:
            stmt = stmt.where(Warehouse.connection_id == connection_id)
        return list((await self.session.execute(stmt)).all())

    async def summary_by_marketplace(self, low_units: int) -> list[Any]:
        totals = stock_totals(self.tenant_id)
        total = func.coalesce(totals.c.total, 0)
        stmt = (
            select(
                Product.marketplace,
                func.count(Product.id),
                func.coalesce(func.sum(totals.c.total), 0),
                func.coalesce(func.sum(totals.c.to_client), 0),
                func.coalesce(func.sum(totals.c.from_client), 0),
                func.count(Product.id).filter(total <= 0),
                func.count(Product.id).filter(and_(total > 0, total < low_units)),
            )
            .outerjoin(totals, totals.c.product_id == Product.id)
            .where(Product.tenant_id == self.tenant_id)
            .group_by(Product.marketplace)
            .order_by(Product.marketplace)
        )
        return list((await self.session.execute(stmt)).all())

    async def summary_by_warehouse(self) -> list[Any]:
        stmt = (
            select(
                Warehouse.id,
                Warehouse.name,
                Warehouse.kind,
                Connection.marketplace,
                func.coalesce(func.sum(StockLevel.quantity), 0),
                func.count(StockLevel.variant_id).filter(StockLevel.quantity > 0),
            )
            .join(Connection, Connection.id == Warehouse.connection_id)
            .outerjoin(StockLevel, StockLevel.warehouse_id == Warehouse.id)
            .where(Warehouse.tenant_id == self.tenant_id)
            .group_by(Warehouse.id, Warehouse.name, Warehouse.kind, Connection.marketplace)
            .order_by(Connection.marketplace, Warehouse.kind, Warehouse.name)
        )
        return list((await self.session.execute(stmt)).all())


__all__ = ["HISTORY_LIMIT", "CatalogRepository"]
