"""HTTP endpoints of the read side: products, stock history, warehouses, stock summary."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from litestar import Controller, get
from litestar.params import Parameter

from app.domain.api import errors_for
from app.domain.catalog.schemas import ProductDetail, ProductPage, StockHistory, StockSummary, WarehousePage
from app.domain.catalog.services import CatalogService, ProductFilter, ProductPageService


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
        catalog_service: CatalogService,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        connection_id: uuid.UUID | None = None,
        marketplace: Literal["wildberries", "ozon"] | None = None,
        search: Annotated[str | None, Parameter(query="search", max_length=200)] = None,
        stock_status: Literal["in_stock", "low", "out"] | None = None,
    ) -> ProductPage:
        filters = ProductFilter(connection_id, marketplace, search, stock_status)
        page = await catalog_service.products(filters, cursor, limit)
        return ProductPage(items=page.items, next_cursor=page.next_cursor)

    @get(
        "/{product_id:uuid}",
        operation_id="getProduct",
        summary="A product with its variants and stock per variant × warehouse",
        responses=errors_for(401, 404),
        opt={"cache": "products.detail"},
    )
    async def get_product(self, product_id: uuid.UUID, product_page_service: ProductPageService) -> ProductDetail:
        return await product_page_service.get(product_id)

    @get(
        "/{product_id:uuid}/stock-history",
        operation_id="getProductStockHistory",
        summary="Stock history points (one per change) for a product",
        responses=errors_for(401, 404, 422),
    )
    async def stock_history(
        self,
        product_id: uuid.UUID,
        catalog_service: CatalogService,
        start: Annotated[datetime | None, Parameter(query="from")] = None,
        end: Annotated[datetime | None, Parameter(query="to")] = None,
        warehouse_id: uuid.UUID | None = None,
        variant_id: uuid.UUID | None = None,
    ) -> StockHistory:
        return await catalog_service.stock_history(product_id, start, end, warehouse_id, variant_id)


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
        self, catalog_service: CatalogService, connection_id: uuid.UUID | None = None
    ) -> WarehousePage:
        return WarehousePage(items=await catalog_service.warehouses(connection_id))


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
    async def summary(self, catalog_service: CatalogService) -> StockSummary:
        return await catalog_service.summary()
