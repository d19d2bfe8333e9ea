"""Days of cover and the stock report, computed from the stored stock rows and order lines."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import OrderLine, Product, StockLevel, Variant, Warehouse
from app.domain.reports.schemas import FORMULA, CoverFigure, Method, Window
from app.lib.clock import utcnow

MSK = timezone(timedelta(hours=3))
WINDOWS = (7, 14, 30)


def window_for(days: int, now: datetime | None = None) -> Window:
    """Whole days by order date in Moscow time, ending yesterday (today is not over yet)."""
    today = (now or utcnow()).astimezone(MSK).date()
    return Window(days=days, start=today - timedelta(days=days), end=today - timedelta(days=1))


def cover(available: int | None, orders: int | None, days: int) -> CoverFigure:
    if available is None:
        return CoverFigure(None, orders, None, None, "stock unknown here (no stock row for this place)")
    if orders is None:
        return CoverFigure(available, None, None, None, "no order data for this connection")
    velocity = orders / days
    if velocity == 0:
        return CoverFigure(available, orders, 0.0, None, "no orders in the window: cover is unbounded")
    return CoverFigure(available, orders, round(velocity, 4), round(available / velocity, 1))


class CoverService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def has_orders(self, connection_ids: list[uuid.UUID]) -> set[uuid.UUID]:
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

    async def decrease_counts(self, product_ids: list[uuid.UUID], window: Window) -> list[Any]:
        """Fallback where orders are unavailable: units that left stock (restocks excluded) in the window."""
        start = datetime.combine(window.start, datetime.min.time(), MSK)
        end = datetime.combine(window.end + timedelta(days=1), datetime.min.time(), MSK)
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

    async def stock_cells(self, product_ids: list[uuid.UUID]) -> list[Any]:
        stmt = select(
            StockLevel.product_id,
            StockLevel.variant_id,
            StockLevel.warehouse_id,
            StockLevel.quantity,
            StockLevel.in_way_to_client,
            StockLevel.in_way_from_client,
        ).where(StockLevel.tenant_id == self.tenant_id, StockLevel.product_id.in_(product_ids))
        return list((await self.session.execute(stmt)).all())

    async def method_and_flows(
        self, products: list[Any], days: int, include_cancelled: bool
    ) -> tuple[Method, dict[tuple[uuid.UUID, uuid.UUID | None, uuid.UUID | None], int]]:
        """Pick the source per connection (orders where we have them, else stock decreases)."""
        window = window_for(days)
        with_orders = await self.has_orders(sorted({p.connection_id for p in products}))
        flows: dict[tuple[uuid.UUID, uuid.UUID | None, uuid.UUID | None], int] = defaultdict(int)
        order_products = [p.id for p in products if p.connection_id in with_orders]
        other_products = [p.id for p in products if p.connection_id not in with_orders]
        if order_products:
            for pid, vid, wid, n in await self.order_counts(order_products, window, include_cancelled):
                flows[(pid, vid, wid)] += int(n)
        if other_products:
            for pid, vid, wid, n in await self.decrease_counts(other_products, window):
                flows[(pid, vid, wid)] += int(n)
        if order_products and not other_products:
            source, detail = "orders", "marketplace order lines (WB: one line per srid), by order date"
        elif other_products and not order_products:
            source, detail = "stock_decreases", "decreases between stock history points; restocks excluded"
        elif products:
            source, detail = "orders", "order lines where the connection provides them, else stock decreases"
        else:
            source, detail = "none", "no products"
        method = Method(
            formula=FORMULA,
            source=source,  # type: ignore[arg-type]
            source_detail=detail + ("; cancelled lines counted" if include_cancelled else "; cancelled lines excluded"),
            counts_cancelled=include_cancelled,
            window=window,
        )
        return method, flows

    async def product_cover(self, product_id: uuid.UUID, days: int, include_cancelled: bool) -> dict[str, Any] | None:
        product = (
            await self.session.execute(
                select(Product.id, Product.connection_id).where(
                    Product.tenant_id == self.tenant_id, Product.id == product_id
                )
            )
        ).first()
        if product is None:
            return None
        method, flows = await self.method_and_flows([product], days, include_cancelled)
        cells = await self.stock_cells([product_id])
        variants = (
            await self.session.execute(
                select(Variant.id, Variant.external_id, Variant.size)
                .where(Variant.tenant_id == self.tenant_id, Variant.product_id == product_id)
                .order_by(Variant.external_id)
            )
        ).all()
        warehouses = (
            await self.session.execute(
                select(Warehouse.id, Warehouse.name, Warehouse.kind).where(
                    Warehouse.tenant_id == self.tenant_id, Warehouse.connection_id == product.connection_id
                )
            )
        ).all()
        stock_by_v: dict[uuid.UUID, int] = defaultdict(int)
        stock_by_w: dict[uuid.UUID, int] = defaultdict(int)
        for c in cells:
            stock_by_v[c.variant_id] += c.quantity
            stock_by_w[c.warehouse_id] += c.quantity
        orders_by_v: dict[uuid.UUID | None, int] = defaultdict(int)
        orders_by_w: dict[uuid.UUID | None, int] = defaultdict(int)
        for (_, vid, wid), n in flows.items():
            orders_by_v[vid] += n
            orders_by_w[wid] += n
        total_orders = sum(flows.values())
        total_stock = sum(c.quantity for c in cells)
        relevant_w = {c.warehouse_id for c in cells} | {w for w in orders_by_w if w is not None}
        return {
            "method": method,
            "product": cover(total_stock, total_orders, days),
            "variants": [(v, cover(stock_by_v.get(v.id, 0), orders_by_v.get(v.id, 0), days)) for v in variants],
            "warehouses": [
                (w, cover(stock_by_w.get(w.id) if w.id in stock_by_w else None, orders_by_w.get(w.id, 0), days))
                for w in warehouses
                if w.id in relevant_w
            ],
        }


def is_valid_window(days: int) -> bool:
    return days in WINDOWS


__all__ = ["WINDOWS", "CoverService", "cover", "is_valid_window", "window_for"]
