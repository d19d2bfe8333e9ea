"""Days of cover and the stock report, computed from the stored stock rows and order lines.

``CoverService`` computes the figures (which source a connection's velocity comes from, the order or
stock-decrease counts per product × variant × warehouse); the alert evaluation and the Telegram bot use
it too. ``ReportService`` is what the API serves: days of cover for one product, and the stock report a
page at a time — ``stock_report`` for one page behind a cursor, ``stock_report_pages`` for every page in
order (what a streaming CSV/XLSX writer consumes without holding the whole report).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.reports.repositories import ReportRepository
from app.domain.reports.schemas import (
    FORMULA,
    CoverFigure,
    DaysOfCover,
    Method,
    ReportCell,
    ReportRow,
    ReportWarehouse,
    StockReport,
    VariantCover,
    WarehouseCover,
    Window,
)
from app.lib.clock import utcnow
from app.lib.errors import NotFoundError
from app.lib.pagination import paginate

MSK = timezone(timedelta(hours=3))
WINDOWS = (7, 14, 30)
# Order (or decrease) counts per (product, variant, warehouse); a None variant or warehouse is an order line
# the marketplace did not place.
Flows = dict[tuple[uuid.UUID, uuid.UUID | None, uuid.UUID | None], int]


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
    """Velocity inputs: order lines where a connection has them, else stock decreases (restocks excluded)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.reports = ReportRepository(session, tenant_id)

    async def method_and_flows(
        self, products: Sequence[Any], days: int, include_cancelled: bool
    ) -> tuple[Method, Flows]:
        """Pick the source per connection (orders where we have them, else stock decreases).

        ``products`` are anything with ``id`` and ``connection_id``.
        """
        window = window_for(days)
        with_orders = await self.reports.connections_with_orders(sorted({p.connection_id for p in products}))
        flows: Flows = defaultdict(int)
        order_products = [p.id for p in products if p.connection_id in with_orders]
        other_products = [p.id for p in products if p.connection_id not in with_orders]
        if order_products:
            for pid, vid, wid, n in await self.reports.order_counts(order_products, window, include_cancelled):
                flows[(pid, vid, wid)] += int(n)
        if other_products:
            start = datetime.combine(window.start, datetime.min.time(), MSK)
            end = datetime.combine(window.end + timedelta(days=1), datetime.min.time(), MSK)
            for pid, vid, wid, n in await self.reports.decrease_counts(other_products, start, end):
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


@dataclass(frozen=True, slots=True)
class StockReportQuery:
    """Which products the stock report covers and how its figures are computed."""

    window: int = 30
    include_cancelled: bool = False
    connection_id: uuid.UUID | None = None


class ReportService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.reports = ReportRepository(session, tenant_id)
        self.cover = CoverService(session, tenant_id)

    async def days_of_cover(self, product_id: uuid.UUID, days: int, include_cancelled: bool) -> DaysOfCover:
        """A product's days of cover, and per variant and per warehouse, with the formula's inputs."""
        product = await self.reports.product_connection(product_id)
        if product is None:
            raise NotFoundError("No such product.")
        method, flows = await self.cover.method_and_flows([product], days, include_cancelled)
        cells = await self.reports.stock_cells([product_id])
        variants = await self.reports.variants(product_id)
        warehouses = await self.reports.connection_warehouses(product.connection_id)
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
        relevant_w = {c.warehouse_id for c in cells} | {w for w in orders_by_w if w is not None}
        return DaysOfCover(
            product_id=product_id,
            method=method,
            product=cover(sum(c.quantity for c in cells), sum(flows.values()), days),
            variants=[
                VariantCover(
                    variant_id=v.id,
                    external_id=v.external_id,
                    size=v.size,
                    cover=cover(stock_by_v.get(v.id, 0), orders_by_v.get(v.id, 0), days),
                )
                for v in variants
            ],
            warehouses=[
                WarehouseCover(
                    warehouse_id=w.id,
                    name=w.name,
                    kind=w.kind.value,
                    cover=cover(stock_by_w.get(w.id) if w.id in stock_by_w else None, orders_by_w.get(w.id, 0), days),
                )
                for w in warehouses
                if w.id in relevant_w
            ],
        )

    async def stock_report(self, query: StockReportQuery, cursor: str | None, limit: int) -> StockReport:
        """One page of the stock report: up to ``limit`` products (by id) after ``cursor``."""
        page = await paginate(
            lambda after, n: self.reports.products_page(
                connection_id=query.connection_id, after=after[0] if after else None, limit=n
            ),
            cursor=cursor,
            limit=limit,
            key=lambda product: (product.id,),
            types=(uuid.UUID,),
        )
        return await self._report(query, page.items, page.next_cursor)

    async def stock_report_pages(self, query: StockReportQuery, page_size: int = 500) -> AsyncIterator[StockReport]:
        """Every page of the stock report in order (each with the warehouses its rows mention)."""
        cursor: str | None = None
        while True:
            page = await self.stock_report(query, cursor, page_size)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def _report(self, query: StockReportQuery, products: list[Any], next_cursor: str | None) -> StockReport:
        """The rows of these products: totals, then a block per warehouse holding stock or having orders.

        Totals are sums of exactly the cells of the row (rule 7); a warehouse without a stock row shows
        ``stock: null``, never 0 (rule 5).
        """
        days = query.window
        method, flows = await self.cover.method_and_flows(products, days, query.include_cancelled)
        stock: dict[tuple[uuid.UUID, uuid.UUID], int] = defaultdict(int)
        to_client: dict[uuid.UUID, int | None] = {}
        from_client: dict[uuid.UUID, int | None] = {}
        for c in await self.reports.stock_cells([p.id for p in products]):
            stock[(c.product_id, c.warehouse_id)] += c.quantity
            if c.in_way_to_client is not None:
                to_client[c.product_id] = (to_client.get(c.product_id) or 0) + c.in_way_to_client
            if c.in_way_from_client is not None:
                from_client[c.product_id] = (from_client.get(c.product_id) or 0) + c.in_way_from_client
        orders: dict[tuple[uuid.UUID, uuid.UUID | None], int] = defaultdict(int)
        for (pid, _vid, wid), n in flows.items():
            orders[(pid, wid)] += n
        warehouses = await self.reports.warehouses({w for (_, w) in stock} | {w for (_, w) in orders if w is not None})
        stock_total: dict[uuid.UUID, int] = defaultdict(int)
        orders_total: dict[uuid.UUID, int] = defaultdict(int)
        for (pid, _), v in stock.items():
            stock_total[pid] += v
        for (pid, _), v in orders.items():
            orders_total[pid] += v
        rows: list[ReportRow] = []
        for p in products:
            total, total_orders = stock_total[p.id], orders_total[p.id]
            cells = []
            for w in warehouses:
                s = stock.get((p.id, w.id))
                o = orders.get((p.id, w.id), 0)
                if s is None and o == 0:
                    continue
                cells.append(
                    ReportCell(warehouse_id=w.id, stock=s, orders=o, days_of_cover=cover(s, o, days).days_of_cover)
                )
            rows.append(
                ReportRow(
                    product_id=p.id,
                    marketplace=p.marketplace.value,
                    external_id=p.external_id,
                    vendor_code=p.vendor_code,
                    brand=p.brand,
                    subject=p.subject,
                    title=p.title,
                    in_way_to_client=to_client.get(p.id),
                    in_way_from_client=from_client.get(p.id),
                    orders=total_orders,
                    total_stock=total,
                    days_of_cover=cover(total, total_orders, days).days_of_cover,
                    warehouses=cells,
                )
            )
        return StockReport(
            method=method,
            warehouses=[ReportWarehouse(warehouse_id=w.id, name=w.name, kind=w.kind.value) for w in warehouses],
            rows=rows,
            next_cursor=next_cursor,
        )


def is_valid_window(days: int) -> bool:
    return days in WINDOWS


__all__ = [
    "WINDOWS",
    "CoverService",
    "ReportService",
    "StockReportQuery",
    "cover",
    "is_valid_window",
    "window_for",
]
