"""HTTP endpoints: days of cover per product / variant / warehouse, and the stock report as JSON."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Annotated, Literal

from litestar import Controller, get
from litestar.params import Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Product, Warehouse
from app.domain.api import decode_cursor, encode_cursor, errors_for
from app.domain.reports.schemas import (
    DaysOfCover,
    ReportCell,
    ReportRow,
    ReportWarehouse,
    StockReport,
    VariantCover,
    WarehouseCover,
)
from app.domain.reports.services import CoverService, cover
from app.lib.errors import NotFoundError
from app.lib.tokens import Principal

WindowDays = Literal[7, 14, 30]


class CoverController(Controller):
    path = "/api/v1/products/{product_id:uuid}/days-of-cover"
    tags = ["analytics"]

    @get(
        "/",
        operation_id="getProductDaysOfCover",
        summary="Days of cover by orders over 7/14/30 days, with formula, window and source",
        responses=errors_for(401, 404, 422),
    )
    async def days_of_cover(
        self,
        product_id: uuid.UUID,
        db_session: AsyncSession,
        principal: Principal,
        window: WindowDays = 30,
        include_cancelled: bool = False,
    ) -> DaysOfCover:
        result = await CoverService(db_session, principal.tenant_id).product_cover(
            product_id, int(window), include_cancelled
        )
        if result is None:
            raise NotFoundError("No such product.")
        return DaysOfCover(
            product_id=product_id,
            method=result["method"],
            product=result["product"],
            variants=[
                VariantCover(variant_id=v.id, external_id=v.external_id, size=v.size, cover=c)
                for v, c in result["variants"]
            ],
            warehouses=[
                WarehouseCover(warehouse_id=w.id, name=w.name, kind=w.kind.value, cover=c)
                for w, c in result["warehouses"]
            ],
        )


class ReportController(Controller):
    path = "/api/v1/reports"
    tags = ["analytics"]

    @get(
        "/stock",
        operation_id="getStockReport",
        summary="The stock report: a row per product, then per-warehouse blocks of stock / orders / days",
        responses=errors_for(401, 422),
    )
    async def stock_report(
        self,
        db_session: AsyncSession,
        principal: Principal,
        window: WindowDays = 30,
        include_cancelled: bool = False,
        connection_id: uuid.UUID | None = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 200,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> StockReport:
        tid = principal.tenant_id
        days = int(window)
        after = decode_cursor(cursor, uuid.UUID)
        stmt = select(Product).where(Product.tenant_id == tid).order_by(Product.id).limit(limit + 1)
        if connection_id is not None:
            stmt = stmt.where(Product.connection_id == connection_id)
        if after is not None:
            stmt = stmt.where(Product.id > after[0])
        products = list((await db_session.execute(stmt)).scalars().all())
        page, next_cursor = products[:limit], None
        if len(products) > limit:
            next_cursor = encode_cursor(page[-1].id)
        svc = CoverService(db_session, tid)
        method, flows = await svc.method_and_flows(page, days, include_cancelled)
        cells = await svc.stock_cells([p.id for p in page]) if page else []
        stock: dict[tuple[uuid.UUID, uuid.UUID], int] = defaultdict(int)
        to_client: dict[uuid.UUID, int | None] = {}
        from_client: dict[uuid.UUID, int | None] = {}
        for c in cells:
            stock[(c.product_id, c.warehouse_id)] += c.quantity
            if c.in_way_to_client is not None:
                to_client[c.product_id] = (to_client.get(c.product_id) or 0) + c.in_way_to_client
            if c.in_way_from_client is not None:
                from_client[c.product_id] = (from_client.get(c.product_id) or 0) + c.in_way_from_client
        orders: dict[tuple[uuid.UUID, uuid.UUID | None], int] = defaultdict(int)
        for (pid, _vid, wid), n in flows.items():
            orders[(pid, wid)] += n
        used_w = {w for (_, w) in stock} | {w for (_, w) in orders if w is not None}
        wh_rows = (
            (
                await db_session.execute(
                    select(Warehouse.id, Warehouse.name, Warehouse.kind)
                    .where(Warehouse.tenant_id == tid, Warehouse.id.in_(used_w))
                    .order_by(Warehouse.kind, Warehouse.name)
                )
            ).all()
            if used_w
            else []
        )
        stock_total: dict[uuid.UUID, int] = defaultdict(int)
        orders_total: dict[uuid.UUID, int] = defaultdict(int)
        for (pid, _), v in stock.items():
            stock_total[pid] += v
        for (pid, _), v in orders.items():
            orders_total[pid] += v
        rows: list[ReportRow] = []
        for p in page:
            total, total_orders = stock_total[p.id], orders_total[p.id]
            cells_out = []
            for w in wh_rows:
                s = stock.get((p.id, w.id))
                o = orders.get((p.id, w.id), 0)
                if s is None and o == 0:
                    continue
                cells_out.append(
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
                    warehouses=cells_out,
                )
            )
        return StockReport(
            method=method,
            warehouses=[ReportWarehouse(warehouse_id=w.id, name=w.name, kind=w.kind.value) for w in wh_rows],
            rows=rows,
            next_cursor=next_cursor,
        )
