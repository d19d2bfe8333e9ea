"""HTTP endpoints: days of cover, the stock report, stock by day and restock recommendations (JSON, CSV, XLSX),
the organization's report settings, and the signed download link of the daily report."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, patch
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from app.domain.api import errors_for, write_guard
from app.domain.reports.controllers._common import (
    CursorParam,
    FileOperation,
    FormatParam,
    LangParam,
    LimitParam,
    NameParam,
    SearchParam,
    SeparatorParam,
    TabularOperation,
    file_response,
)
from app.domain.reports.schemas import (
    DaysOfCover,
    ReportSettings,
    ReportSettingsUpdate,
    RestockReport,
    StockByDay,
    StockReport,
)
from app.domain.reports.services import (
    ReportDownloadService,
    ReportService,
    ReportSettingsService,
    RestockQuery,
    RestockService,
    StockByDayQuery,
    StockByDayService,
    StockReportQuery,
    negotiate,
)

WindowDays = Literal[7, 14, 30]
Per = Literal["product", "size"]
Marketplace = Literal["wildberries", "ozon"]
StockStatusFilter = Literal["in_stock", "low", "out", "low_or_out"]
WarehouseIds = Annotated[
    list[uuid.UUID] | None, Parameter(description="Only these warehouses (repeat the parameter for several)")
]
DateFrom = Annotated[date, Parameter(query="from", description="First day (the organization's time zone)")]
DateTo = Annotated[date, Parameter(query="to", description="Last day, at most today")]
_FILE_ERRORS = (401, 404, 406, 422)


def _spec(description: str, container: Any) -> dict[int, Any]:
    return {
        200: ResponseSpec(data_container=container, description=description, generate_examples=False),
        **errors_for(*_FILE_ERRORS),
    }


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
        summary="The stock report: a row per product (or size), then per warehouse stock / orders / days — "
        "JSON (paged), CSV or XLSX (whole, streamed)",
        responses=_spec("The report (JSON page, or the whole report as a CSV / XLSX file)", StockReport),
        operation_class=TabularOperation,
    )
    async def stock_report(
        self,
        request: Request[Any, Any, Any],
        report_service: ReportService,
        fmt: FormatParam = None,
        lang: LangParam = None,
        separator: SeparatorParam = "comma",
        window: WindowDays = 30,
        include_cancelled: bool = False,
        per: Per = "product",
        marketplace: Marketplace | None = None,
        connection_id: uuid.UUID | None = None,
        warehouse_id: WarehouseIds = None,
        brand: NameParam = None,
        subject: NameParam = None,
        search: SearchParam = None,
        stock_status: StockStatusFilter | None = None,
        limit: LimitParam = 200,
        cursor: CursorParam = None,
    ) -> Response[Any]:
        query = StockReportQuery(
            window=int(window),
            include_cancelled=include_cancelled,
            connection_id=connection_id,
            marketplace=marketplace,
            warehouse_ids=tuple(warehouse_id or ()),
            brand=brand,
            subject=subject,
            search=search,
            stock_status=stock_status,
            per=per,
        )
        chosen = negotiate(fmt, request.headers.get("accept"))
        if chosen == "json":
            return Response(await report_service.stock_report(query, cursor, limit))
        return file_response(await report_service.stock_report_file(query, chosen, lang, separator))

    @get(
        "/stock-by-day",
        operation_id="getStockByDay",
        summary="End-of-day stock per product (× size) × date in the organization's time zone, with days out "
        "of stock and lost-order estimates — JSON (paged), CSV or XLSX (the cabinet's layout)",
        responses=_spec("The matrix (JSON page, or the whole of it as a CSV / XLSX file)", StockByDay),
        operation_class=TabularOperation,
    )
    async def stock_by_day(
        self,
        request: Request[Any, Any, Any],
        stock_by_day_service: StockByDayService,
        date_from: DateFrom,
        date_to: DateTo,
        fmt: FormatParam = None,
        lang: LangParam = None,
        separator: SeparatorParam = "comma",
        per: Per = "size",
        include_cancelled: bool = False,
        marketplace: Marketplace | None = None,
        connection_id: uuid.UUID | None = None,
        warehouse_id: WarehouseIds = None,
        brand: NameParam = None,
        subject: NameParam = None,
        search: SearchParam = None,
        limit: LimitParam = 200,
        cursor: CursorParam = None,
    ) -> Response[Any]:
        query = StockByDayQuery(
            date_from=date_from,
            date_to=date_to,
            per=per,
            include_cancelled=include_cancelled,
            connection_id=connection_id,
            marketplace=marketplace,
            warehouse_ids=tuple(warehouse_id or ()),
            brand=brand,
            subject=subject,
            search=search,
        )
        chosen = negotiate(fmt, request.headers.get("accept"))
        if chosen == "json":
            return Response(await stock_by_day_service.report(query, cursor, limit))
        return file_response(await stock_by_day_service.file(query, chosen, lang, separator))

    @get(
        "/restock",
        operation_id="getRestockRecommendations",
        summary="Restock recommendations per product × warehouse: velocity 7/14/30, days of cover, units to ship "
        "to reach lead time + safety days, with the formula's inputs — JSON (paged), CSV or XLSX",
        responses=_spec("The recommendations (JSON page, or all of them as a CSV / XLSX file)", RestockReport),
        operation_class=TabularOperation,
    )
    async def restock(
        self,
        request: Request[Any, Any, Any],
        restock_service: RestockService,
        fmt: FormatParam = None,
        lang: LangParam = None,
        separator: SeparatorParam = "comma",
        window: WindowDays = 30,
        include_cancelled: bool = False,
        only_to_ship: bool = False,
        marketplace: Marketplace | None = None,
        connection_id: uuid.UUID | None = None,
        warehouse_id: WarehouseIds = None,
        brand: NameParam = None,
        subject: NameParam = None,
        search: SearchParam = None,
        limit: LimitParam = 200,
        cursor: CursorParam = None,
    ) -> Response[Any]:
        query = RestockQuery(
            window=int(window),
            include_cancelled=include_cancelled,
            connection_id=connection_id,
            marketplace=marketplace,
            warehouse_ids=tuple(warehouse_id or ()),
            brand=brand,
            subject=subject,
            search=search,
            only_to_ship=only_to_ship,
        )
        chosen = negotiate(fmt, request.headers.get("accept"))
        if chosen == "json":
            return Response(await restock_service.report(query, cursor, limit))
        return file_response(await restock_service.file(query, chosen, lang, separator))

    @get(
        "/settings",
        operation_id="getReportSettings",
        summary="The organization's report settings: language, daily report, restock targets",
        responses=errors_for(401),
    )
    async def get_settings(self, report_settings_service: ReportSettingsService) -> ReportSettings:
        return await report_settings_service.get()

    @patch(
        "/settings",
        operation_id="updateReportSettings",
        summary="Change the report settings (only the fields given; `daily_report_time: null` turns it off)",
        guards=[write_guard],
        responses=errors_for(401, 403, 422),
    )
    async def update_settings(
        self, data: ReportSettingsUpdate, report_settings_service: ReportSettingsService
    ) -> ReportSettings:
        return await report_settings_service.update(data)


class ReportDownloadController(Controller):
    """Public: the signed link is the credential (``report.ready`` carries it)."""

    path = "/api/v1/reports/download"
    tags = ["analytics"]

    @get(
        "/",
        operation_id="downloadReport",
        summary="Download the report a signed link (from `report.ready`) names; valid until it expires",
        responses={
            200: _spec("The report file", str)[200],
            **errors_for(403, 422),
        },
        operation_class=FileOperation,
    )
    async def download(
        self,
        report_download_service: ReportDownloadService,
        token: Annotated[str, Parameter(min_length=10, max_length=2000)],
    ) -> Response[Any]:
        return file_response(await report_download_service.open(token))


__all__ = ["CoverController", "ReportController", "ReportDownloadController"]
