"""Stock history read for stock by day: each cell's last point before the range, and the points inside it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Every stock cell of the products (stock_levels holds every variant × warehouse that ever had a row: a
# successful sync zeroes a row, it never deletes it), with its last point before the range — one index probe
# per cell on (variant_id, warehouse_id, at), never a scan of older history.
_BASELINE = """
    SELECT s.product_id, s.variant_id, s.warehouse_id, b.quantity
    FROM stock_levels s
    LEFT JOIN LATERAL (
        SELECT h.quantity FROM stock_history h
        WHERE h.tenant_id = s.tenant_id AND h.variant_id = s.variant_id AND h.warehouse_id = s.warehouse_id
          AND h.at < :start
        ORDER BY h.at DESC, h.id DESC LIMIT 1
    ) b ON true
    WHERE s.tenant_id = :tid AND s.product_id = ANY(:pids) {warehouses}
"""
_POINTS = """
    SELECT h.product_id, h.variant_id, h.warehouse_id, h.at, h.quantity
    FROM stock_history h
    WHERE h.tenant_id = :tid AND h.product_id = ANY(:pids) AND h.at >= :start AND h.at < :end {warehouses}
    ORDER BY h.at, h.id
"""


class HistoryRepository:
    """Tenant-scoped reads of stock history for a page of products."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    def _params(
        self, product_ids: list[uuid.UUID], warehouse_ids: tuple[uuid.UUID, ...], **extra: Any
    ) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"tid": self.tenant_id, "pids": product_ids, **extra}
        if warehouse_ids:
            params["wids"] = list(warehouse_ids)
            return "AND {alias}.warehouse_id = ANY(:wids)", params
        return "", params

    async def baselines(
        self, product_ids: list[uuid.UUID], warehouse_ids: tuple[uuid.UUID, ...], start: datetime
    ) -> list[Any]:
        """(product, variant, warehouse, quantity at ``start`` or None) for every stock cell of the products."""
        if not product_ids:
            return []
        where, params = self._params(product_ids, warehouse_ids, start=start)
        sql = _BASELINE.format(warehouses=where.format(alias="s"))
        return list((await self.session.execute(text(sql), params)).all())

    async def points(
        self, product_ids: list[uuid.UUID], warehouse_ids: tuple[uuid.UUID, ...], start: datetime, end: datetime
    ) -> list[Any]:
        """(product, variant, warehouse, at, quantity) of the points in [start, end), oldest first."""
        if not product_ids:
            return []
        where, params = self._params(product_ids, warehouse_ids, start=start, end=end)
        sql = _POINTS.format(warehouses=where.format(alias="h"))
        return list((await self.session.execute(text(sql), params)).all())
