"""HTTP endpoints of the read side: products, stock history, warehouses, stock summary."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, get
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.alerts.services import tenant_low_units
from app.domain.api import decode_cursor, encode_cursor, errors_for
from app.domain.catalog.repositories import HISTORY_LIMIT, CatalogRepository, product_page
from app.domain.catalog.schemas import (
    HistoryPoint,
    MarketplaceSummary,
    ProductDetail,
    ProductListItem,
    ProductPage,
    StockCell,
    StockHistoryOut,
    StockSummary,
    SummaryBlock,
    VariantOut,
    WarehouseOut,
    WarehousePage,
    WarehouseSummary,
)
from app.lib.errors import NotFoundError
from app.lib.tokens import Principal


def _sum_present(values: list[int | None]) -> int | None:
    """SQL's SUM: the sum of the values that are there, NULL when none is."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _product_detail(rows: list[Any], default_low_units: int) -> ProductDetail:
    """The product page from ``st_product_page``'s rows; totals are summed from exactly the cells shown."""
    first = rows[0]
    variants: dict[uuid.UUID, Any] = {}  # variant id → its row (first seen), in the function's order
    by_variant: dict[uuid.UUID, list[StockCell]] = {}
    for r in rows:
        vid = r["variant_id"]
        if vid is None:
            continue
        if vid not in variants:
            variants[vid] = r
            by_variant[vid] = []
        if r["warehouse_id"] is not None:
            by_variant[vid].append(
                StockCell(
                    warehouse_id=r["warehouse_id"],
                    warehouse_external_id=r["warehouse_external_id"],
                    warehouse_name=r["warehouse_name"],
                    kind=r["kind"],
                    quantity=r["quantity"],
                    in_way_to_client=r["in_way_to_client"],
                    in_way_from_client=r["in_way_from_client"],
                    reserved=r["reserved"],
                    changed_at=r["changed_at"],
                )
            )
    cells = [cell for stock in by_variant.values() for cell in stock]
    total = sum(c.quantity for c in cells)
    low = first["low_units"] if first["low_units"] is not None else default_low_units
    return ProductDetail(
        id=first["id"],
        connection_id=first["connection_id"],
        marketplace=first["marketplace"],
        external_id=first["external_id"],
        vendor_code=first["vendor_code"],
        title=first["title"],
        brand=first["brand"],
        subject=first["subject"],
        photo_url=first["photo_url"],
        total_quantity=total,
        in_way_to_client=_sum_present([c.in_way_to_client for c in cells]),
        in_way_from_client=_sum_present([c.in_way_from_client for c in cells]),
        stock_status=_status(total, low),
        last_seen_at=first["last_success_at"],
        variants=[
            VariantOut(
                id=vid,
                external_id=v["variant_external_id"],
                size=v["size"],
                marketplace_size=v["marketplace_size"],
                barcodes=list(v["barcodes"] or []),
                total_quantity=sum(c.quantity for c in by_variant[vid]),
                stock=by_variant[vid],
            )
            for vid, v in variants.items()
        ],
    )


def _status(total: int, low_units: int) -> Literal["in_stock", "low", "out"]:
    if total <= 0:
        return "out"
    return "low" if total < low_units else "in_stock"


async def _low_units(request: Request[Any, Any, Any], session: AsyncSession, principal: Principal) -> int:
    """The tenant's default alert rule decides what "low" means (the deployment default until one is set)."""
    return await tenant_low_units(session, principal.tenant_id, int(request.app.state.settings.low_stock_units))


class ProductController(Controller):
    path = "/api/v1/products"
    tags = ["products"]

    @get(
        "/",
        operation_id="listProducts",
        summary="Products with their total stock (cursor pagination)",
        responses=errors_for(401, 422),
        opt={"cache": "products.list"},
    )
    async def list_products(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        connection_id: uuid.UUID | None = None,
        marketplace: Literal["wildberries", "ozon"] | None = None,
        search: Annotated[str | None, Parameter(query="search", max_length=200)] = None,
        stock_status: Literal["in_stock", "low", "out"] | None = None,
    ) -> ProductPage:
        after = decode_cursor(cursor, uuid.UUID)
        low = await _low_units(request, db_session, principal)
        rows = await CatalogRepository(db_session, principal.tenant_id).list_products(
            limit=limit + 1,
            after=after[0] if after else None,
            connection_id=connection_id,
            marketplace=marketplace,
            search=search,
            stock_status=stock_status,
            low_units=low,
        )
        items = [
            ProductListItem(
                id=r.id,
                connection_id=r.connection_id,
                marketplace=r.marketplace.value,
                external_id=r.external_id,
                vendor_code=r.vendor_code,
                title=r.title,
                brand=r.brand,
                subject=r.subject,
                photo_url=r.photo_url,
                total_quantity=int(r.total),
                in_way_to_client=r.to_client,
                in_way_from_client=r.from_client,
                stock_status=_status(int(r.total), low),
                warehouses=int(r.warehouses),
            )
            for r in rows[:limit]
        ]
        next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
        return ProductPage(items=items, next_cursor=next_cursor)

    @get(
        "/{product_id:uuid}",
        operation_id="getProduct",
        summary="A product with its variants and stock per variant × warehouse",
        responses=errors_for(401, 404),
        opt={"cache": "products.detail"},
    )
    async def get_product(
        self, request: Request[Any, Any, Any], product_id: uuid.UUID, principal: Principal
    ) -> ProductDetail:
        # The hot read path: one round trip, RLS scoped inside the statement (st_product_page, app/db/reads.py).
        rows = await product_page(request.app.state.engine, principal.tenant_id, product_id)
        if not rows:
            raise NotFoundError("No such product.")
        return _product_detail(rows, int(request.app.state.settings.low_stock_units))

    @get(
        "/{product_id:uuid}/stock-history",
        operation_id="getProductStockHistory",
        summary="Stock history points (one per change) for a product",
        responses=errors_for(401, 404, 422),
    )
    async def stock_history(
        self,
        product_id: uuid.UUID,
        db_session: AsyncSession,
        principal: Principal,
        start: Annotated[datetime | None, Parameter(query="from")] = None,
        end: Annotated[datetime | None, Parameter(query="to")] = None,
        warehouse_id: uuid.UUID | None = None,
        variant_id: uuid.UUID | None = None,
    ) -> StockHistoryOut:
        repo = CatalogRepository(db_session, principal.tenant_id)
        if await repo.get_product(product_id) is None:
            raise NotFoundError("No such product.")
        rows = await repo.history(product_id, start, end, warehouse_id, variant_id)
        return StockHistoryOut(
            product_id=product_id,
            points=[
                HistoryPoint(
                    at=r.at,
                    quantity=r.quantity,
                    variant_id=r.variant_id,
                    warehouse_id=r.warehouse_id,
                    in_way_to_client=r.in_way_to_client,
                    in_way_from_client=r.in_way_from_client,
                )
                for r in rows[:HISTORY_LIMIT]
            ],
            truncated=len(rows) > HISTORY_LIMIT,
        )


class WarehouseController(Controller):
    path = "/api/v1/warehouses"
    tags = ["warehouses"]

    @get(
        "/",
        operation_id="listWarehouses",
        summary="Warehouses with the stock held in each",
        responses=errors_for(401, 422),
    )
    async def list_warehouses(
        self, db_session: AsyncSession, principal: Principal, connection_id: uuid.UUID | None = None
    ) -> WarehousePage:
        rows = await CatalogRepository(db_session, principal.tenant_id).warehouses(connection_id)
        return WarehousePage(
            items=[
                WarehouseOut(
                    id=r[0],
                    connection_id=r[1],
                    external_id=r[2],
                    name=r[3],
                    kind=r[4].value,
                    region=r[5],
                    total_quantity=int(r[6]),
                    variants_in_stock=int(r[7]),
                )
                for r in rows
            ]
        )


class StockSummaryController(Controller):
    path = "/api/v1/stock"
    tags = ["stock"]

    @get(
        "/summary",
        operation_id="getStockSummary",
        summary="Totals, out-of-stock and low-stock counts",
        responses=errors_for(401),
        opt={"cache": "stock.summary"},
    )
    async def summary(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, principal: Principal
    ) -> StockSummary:
        low = await _low_units(request, db_session, principal)
        repo = CatalogRepository(db_session, principal.tenant_id)
        by_mp = await repo.summary_by_marketplace(low)
        blocks = [
            MarketplaceSummary(
                marketplace=r[0].value,
                summary=SummaryBlock(
                    products=int(r[1]),
                    total_quantity=int(r[2]),
                    in_way_to_client=int(r[3]),
                    in_way_from_client=int(r[4]),
                    out_of_stock=int(r[5]),
                    low_stock=int(r[6]),
                ),
            )
            for r in by_mp
        ]
        totals = SummaryBlock(
            products=sum(b.summary.products for b in blocks),
            total_quantity=sum(b.summary.total_quantity for b in blocks),
            in_way_to_client=sum(b.summary.in_way_to_client for b in blocks),
            in_way_from_client=sum(b.summary.in_way_from_client for b in blocks),
            out_of_stock=sum(b.summary.out_of_stock for b in blocks),
            low_stock=sum(b.summary.low_stock for b in blocks),
        )
        return StockSummary(
            totals=totals,
            by_marketplace=blocks,
            by_warehouse=[
                WarehouseSummary(
                    warehouse_id=r[0],
                    name=r[1],
                    kind=r[2].value,
                    marketplace=r[3].value,
                    total_quantity=int(r[4]),
                    variants_in_stock=int(r[5]),
                )
                for r in await repo.summary_by_warehouse()
            ],
            low_stock_threshold_units=low,
            definition=(
                "out_of_stock: products whose available units over all variants and warehouses are 0; "
                f"low_stock: products with 0 < units < {low}; totals sum the same stock rows as the breakdowns"
            ),
        )
