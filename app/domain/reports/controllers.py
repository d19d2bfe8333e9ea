"""HTTP endpoints: days of cover per product / variant / warehouse, and the stock report as JSON."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from litestar import Controller, get
from litestar.params import Parameter

from app.domain.api import errors_for
from app.domain.reports.schemas import DaysOfCover, StockReport
from app.domain.reports.services import ReportService, StockReportQuery

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
        report_service: ReportService,
        window: WindowDays = 30,
        include_cancelled: bool = False,
    ) -> DaysOfCover:
        return await report_service.days_of_cover(product_id, int(window), include_cancelled)


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
        report_service: ReportService,
        window: WindowDays = 30,
        include_cancelled: bool = False,
        connection_id: uuid.UUID | None = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 200,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> StockReport:
        query = StockReportQuery(window=int(window), include_cancelled=include_cancelled, connection_id=connection_id)
        return await report_service.stock_report(query, cursor, limit)
