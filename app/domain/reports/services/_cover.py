"""Velocity and days of cover: which source a connection's velocity comes from (order lines where it has them,
else stock decreases with restocks excluded), and the counts per product × variant × warehouse. The alert
evaluation, the Telegram bot and every report use it."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.reports.repositories import ReportRepository
from app.domain.reports.schemas import FORMULA, CoverFigure, Method, Source, Window
from app.lib.clock import utcnow

MSK = timezone(timedelta(hours=3))
WINDOWS = (7, 14, 30)
# Order (or decrease) counts per (product, variant, warehouse); a None variant or warehouse is an order line
# the marketplace did not place.
Flows = dict[tuple[uuid.UUID, uuid.UUID | None, uuid.UUID | None], int]


def window_for(days: int, now: datetime | None = None) -> Window:
    """Whole days by order date in Moscow time, ending yesterday (today is not over yet)."""
    today = (now or utcnow()).astimezone(MSK).date()
    return Window(days=days, start=today - timedelta(days=days), end=today - timedelta(days=1))


def window_between(start: date, end: date) -> Window:
    return Window(days=(end - start).days + 1, start=start, end=end)


def cover(available: int | None, orders: int | None, days: int) -> CoverFigure:
    if available is None:
        return CoverFigure(None, orders, None, None, "stock unknown here (no stock row for this place)")
    if orders is None:
        return CoverFigure(available, None, None, None, "no order data for this connection")
    velocity = orders / days
    if velocity == 0:
        return CoverFigure(available, orders, 0.0, None, "no orders in the window: cover is unbounded")
    return CoverFigure(available, orders, round(velocity, 4), round(available / velocity, 1))


def decrease_range(window: Window) -> tuple[datetime, datetime]:
    """The window's whole Moscow days as [start, end) instants (where stock decreases are counted)."""
    start = datetime.combine(window.start, datetime.min.time(), MSK)
    return start, datetime.combine(window.end + timedelta(days=1), datetime.min.time(), MSK)


def is_valid_window(days: int) -> bool:
    return days in WINDOWS


class CoverService:
    """Velocity inputs: order lines where a connection has them, else stock decreases (restocks excluded)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.reports = ReportRepository(session, tenant_id)

    async def with_orders(self, connection_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """The connections whose velocity comes from order lines (they have stored some)."""
        return await self.reports.connections_with_orders(sorted(set(connection_ids)))

    async def method_and_flows(
        self,
        products: Sequence[Any],
        days: int,
        include_cancelled: bool,
        *,
        with_orders: set[uuid.UUID] | None = None,
        window: Window | None = None,
    ) -> tuple[Method, Flows]:
        """Pick the source per connection (orders where we have them, else stock decreases) and count.

        ``products`` are anything with ``id`` and ``connection_id``; ``window`` defaults to the ``days`` whole
        days ending yesterday; ``with_orders`` (from ``with_orders()``) saves a query per call.
        """
        window = window or window_for(days)
        if with_orders is None:
            with_orders = await self.with_orders([p.connection_id for p in products])
        flows: Flows = defaultdict(int)
        order_products = [p.id for p in products if p.connection_id in with_orders]
        other_products = [p.id for p in products if p.connection_id not in with_orders]
        if order_products:
            for pid, vid, wid, n in await self.reports.order_counts(order_products, window, include_cancelled):
                flows[(pid, vid, wid)] += int(n)
        if other_products:
            start, end = decrease_range(window)
            for pid, vid, wid, n in await self.reports.decrease_counts(other_products, start, end):
                flows[(pid, vid, wid)] += int(n)
        source, detail = describe_source(bool(order_products), bool(other_products), bool(products))
        method = Method(
            formula=FORMULA,
            source=source,
            source_detail=detail + ("; cancelled lines counted" if include_cancelled else "; cancelled lines excluded"),
            counts_cancelled=include_cancelled,
            window=window,
        )
        return method, flows


def describe_source(orders: bool, decreases: bool, any_products: bool) -> tuple[Source, str]:
    if orders and not decreases:
        return "orders", "marketplace order lines (WB: one line per srid; Ozon: one per posting unit), by order date"
    if decreases and not orders:
        return "stock_decreases", "decreases between stock history points; restocks excluded"
    if any_products:
        return "orders", "order lines where the connection provides them, else stock decreases"
    return "none", "no products"
