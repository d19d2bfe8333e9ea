"""HTTP endpoints: Google Sheets links, and a product's own restock settings."""

from __future__ import annotations

import uuid

from litestar import Controller, delete, get, patch, post, put

from app.domain.api import errors_for, write_guard
from app.domain.reports.schemas import (
    RestockSettings,
    RestockSettingsUpdate,
    SheetLink,
    SheetLinkCreate,
    SheetLinkList,
    SheetLinkUpdate,
    SheetPushAccepted,
)
from app.domain.reports.services import ReportSettingsService, SheetLinkService


class SheetLinkController(Controller):
    path = "/api/v1/reports/sheets"
    tags = ["analytics"]

    @post(
        "/",
        operation_id="createSheetLink",
        summary="Link a Google Sheet (service-account key file; share the sheet with its client_email)",
        guards=[write_guard],
        responses=errors_for(401, 403, 422),
    )
    async def create(self, data: SheetLinkCreate, sheet_link_service: SheetLinkService) -> SheetLink:
        return await sheet_link_service.create(data)

    @get("/", operation_id="listSheetLinks", summary="Google Sheets links", responses=errors_for(401))
    async def list_links(self, sheet_link_service: SheetLinkService) -> SheetLinkList:
        return await sheet_link_service.list()

    @get(
        "/{sheet_link_id:uuid}",
        operation_id="getSheetLink",
        summary="One Google Sheets link, with its last push",
        responses=errors_for(401, 404),
    )
    async def get_link(self, sheet_link_id: uuid.UUID, sheet_link_service: SheetLinkService) -> SheetLink:
        return await sheet_link_service.get(sheet_link_id)

    @patch(
        "/{sheet_link_id:uuid}",
        operation_id="updateSheetLink",
        summary="Change a link (a new key file or spreadsheet re-activates an invalid link)",
        guards=[write_guard],
        responses=errors_for(401, 403, 404, 422),
    )
    async def update(
        self, sheet_link_id: uuid.UUID, data: SheetLinkUpdate, sheet_link_service: SheetLinkService
    ) -> SheetLink:
        return await sheet_link_service.update(sheet_link_id, data)

    @delete(
        "/{sheet_link_id:uuid}",
        operation_id="deleteSheetLink",
        summary="Remove a link (the spreadsheet is left as it is)",
        guards=[write_guard],
        responses=errors_for(401, 403, 404),
    )
    async def delete_link(self, sheet_link_id: uuid.UUID, sheet_link_service: SheetLinkService) -> None:
        await sheet_link_service.delete(sheet_link_id)

    @post(
        "/{sheet_link_id:uuid}/push",
        operation_id="pushSheetLink",
        status_code=202,
        summary="Write the report to the sheet now (in the background; the link records the outcome)",
        guards=[write_guard],
        responses=errors_for(401, 403, 404),
    )
    async def push(self, sheet_link_id: uuid.UUID, sheet_link_service: SheetLinkService) -> SheetPushAccepted:
        return await sheet_link_service.request_push(sheet_link_id)


class RestockSettingsController(Controller):
    path = "/api/v1/products/{product_id:uuid}/restock-settings"
    tags = ["analytics"]

    @get(
        "/",
        operation_id="getProductRestockSettings",
        summary="A product's own lead time / safety days, and what applies to it",
        responses=errors_for(401, 404),
    )
    async def get_settings(
        self, product_id: uuid.UUID, report_settings_service: ReportSettingsService
    ) -> RestockSettings:
        return await report_settings_service.restock_settings(product_id)

    @put(
        "/",
        operation_id="replaceProductRestockSettings",
        summary="Set a product's own lead time / safety days (null follows the organization's)",
        guards=[write_guard],
        responses=errors_for(401, 403, 404, 422),
    )
    async def put_settings(
        self, product_id: uuid.UUID, data: RestockSettingsUpdate, report_settings_service: ReportSettingsService
    ) -> RestockSettings:
        return await report_settings_service.put_restock_settings(product_id, data)

    @delete(
        "/",
        operation_id="deleteProductRestockSettings",
        summary="Back to the organization's lead time and safety days",
        guards=[write_guard],
        responses=errors_for(401, 403, 404),
    )
    async def delete_settings(self, product_id: uuid.UUID, report_settings_service: ReportSettingsService) -> None:
        await report_settings_service.delete_restock_settings(product_id)
