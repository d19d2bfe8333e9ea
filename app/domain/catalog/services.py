"""Use-cases of the catalogue read side: products (list, page, history), warehouses, the stock summary.

These are computed reads, so they return the API's read models (Structs) directly; what "low" means comes
from the tenant's default alert rule (the deployment default until one is set).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.domain.alerts.services import tenant_low_units
from app.domain.catalog.repositories import HISTORY_LIMIT, CatalogRepository, product_page
from app.domain.catalog.schemas import (
    MarketplaceSummary,
    Product,
    ProductDetail,
    StockCell,
    StockHistory,
    StockHistoryPoint,
    StockSummary,
    SummaryBlock,
    Variant,
    Warehouse,
    WarehouseSummary,
)
from app.lib.errors import NotFoundError
from app.lib.pagination import Page, paginate

StockStatus = Literal["in_stock", "low", "out"]


@dataclass(frozen=True, slots=True)
class ProductFilter:
    connection_id: uuid.UUID | None = None
    marketplace: str | None = None
    search: str | None = None
    stock_status: StockStatus | None = None


def stock_status(total: int, low_units: int) -> StockStatus:
    if total <= 0:
        return "out"
    return "low" if total < low_units else "in_stock"


class CatalogService:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, default_low_units: int) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.default_low_units = default_low_units
        self.catalog = CatalogRepository(session, tenant_id)

    async def low_units(self) -> int:
        """Units below which a product is "low" for this tenant."""
        return await tenant_low_units(self.session, self.tenant_id, self.default_low_units)

    async def products(self, filters: ProductFilter, cursor: str | None, limit: int) -> Page[Product]:
        """Products by id with their stock totals, filtered (``stock_status`` by the tenant's "low")."""
        low = await self.low_units()
        page = await paginate(
            lambda after, n: self.catalog.list_products(
                limit=n,
                after=after[0] if after else None,
                connection_id=filters.connection_id,
                marketplace=filters.marketplace,
                search=filters.search,
                stock_status=filters.stock_status,
                low_units=low,
            ),
            cursor=cursor,
            limit=limit,
            key=lambda row: (row.id,),
            types=(uuid.UUID,),
        )
        return Page(items=[_product(r, low) for r in page.items], next_cursor=page.next_cursor)

    async def stock_history(
        self,
        product_id: uuid.UUID,
        start: datetime | None,
        end: datetime | None,
        warehouse_id: uuid.UUID | None,
        variant_id: uuid.UUID | None,
    ) -> StockHistory:
        """Points in time order, at most ``HISTORY_LIMIT`` (``truncated`` says when there were more)."""
        if await self.catalog.get_product(product_id) is None:
            raise NotFoundError("No such product.")
        rows = await self.catalog.history(product_id, start, end, warehouse_id, variant_id)
        return StockHistory(
            product_id=product_id,
            points=[
                StockHistoryPoint(
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

    async def warehouses(self, connection_id: uuid.UUID | None) -> list[Warehouse]:
        """Every warehouse with the stock held in it."""
        return [
            Warehouse(
                id=r[0],
                connection_id=r[1],
                external_id=r[2],
                name=r[3],
                kind=r[4].value,
                region=r[5],
                total_quantity=int(r[6]),
                variants_in_stock=int(r[7]),
            )
            for r in await self.catalog.warehouses(connection_id)
        ]

    async def summary(self) -> StockSummary:
        """Totals by marketplace and by warehouse; the totals are sums of the breakdown (rule 7)."""
        low = await self.low_units()
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
            for r in await self.catalog.summary_by_marketplace(low)
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
                for r in await self.catalog.summary_by_warehouse()
            ],
            low_stock_threshold_units=low,
            definition=(
                "out_of_stock: products whose available units over all variants and warehouses are 0; "
                f"low_stock: products with 0 < units < {low}; totals sum the same stock rows as the breakdowns"
            ),
        )


class ProductPageService:
    """The product page: the hot read path, one round trip on the pool (no ORM session, see app/db/reads.py)."""

    def __init__(self, engine: AsyncEngine, tenant_id: uuid.UUID, default_low_units: int) -> None:
        self.engine = engine
        self.tenant_id = tenant_id
        self.default_low_units = default_low_units

    async def get(self, product_id: uuid.UUID) -> ProductDetail:
        rows = await product_page(self.engine, self.tenant_id, product_id)
        if not rows:
            raise NotFoundError("No such product.")
        return product_detail(rows, self.default_low_units)


def _product(r: Any, low_units: int) -> Product:
    return Product(
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
        stock_status=stock_status(int(r.total), low_units),
        warehouses=int(r.warehouses),
    )


def _sum_present(values: list[int | None]) -> int | None:
    """SQL's SUM: the sum of the values that are there, NULL when none is."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def product_detail(rows: list[Any], default_low_units: int) -> ProductDetail:
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
        stock_status=stock_status(total, low),
        last_seen_at=first["last_success_at"],
        variants=[
            Variant(
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
