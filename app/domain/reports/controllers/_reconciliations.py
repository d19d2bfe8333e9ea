"""HTTP endpoints: reconciliations with the WB cabinet's stock-history export (upload, read, download)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body

from app.domain.api import errors_for, write_guard
from app.domain.reports.cabinet import MAX_UPLOAD_BYTES
from app.domain.reports.controllers._common import (
    CursorParam,
    FormatParam,
    LangParam,
    LimitParam,
    SeparatorParam,
    TabularOperation,
    file_response,
)
from app.domain.reports.schemas import Reconciliation, ReconciliationLinePage, ReconciliationPage
from app.domain.reports.services import ReconciliationService, Upload, negotiate

# The body is a multipart form around the file: room for the form's own bytes beyond the file's 20 MB.
MAX_BODY = MAX_UPLOAD_BYTES + 64 * 1024


@dataclass
class ReconciliationCreate:
    """``file``: the cabinet's "История остатков" export, CSV or XLSX exactly as downloaded (≤ 20 MB).
    ``connection_id``: the WB connection to compare with (needed only when there are several).
    ``period_from`` / ``period_to``: the days whose orders the file counts, for a CSV (an XLSX says itself)."""

    file: UploadFile
    connection_id: uuid.UUID | None = None
    period_from: date | None = None
    period_to: date | None = None


class ReconciliationController(Controller):
    path = "/api/v1/reconciliations"
    tags = ["analytics"]

    @post(
        "/",
        operation_id="createReconciliation",
        summary="Upload the WB cabinet's stock-history export and compare it with our figures (stored)",
        guards=[write_guard],
        request_max_body_size=MAX_BODY,
        responses=errors_for(401, 403, 404, 413, 422),
    )
    async def create(
        self,
        data: Annotated[ReconciliationCreate, Body(media_type=RequestEncodingType.MULTI_PART)],
        reconciliation_service: ReconciliationService,
    ) -> Reconciliation:
        content = await data.file.read()
        upload = Upload(
            data=content,
            file_name=data.file.filename or "",
            connection_id=data.connection_id,
            period_from=data.period_from,
            period_to=data.period_to,
        )
        return await reconciliation_service.create(upload)

    @get(
        "/", operation_id="listReconciliations", summary="Reconciliations, newest first", responses=errors_for(401, 422)
    )
    async def list_reconciliations(
        self, reconciliation_service: ReconciliationService, limit: LimitParam = 50, cursor: CursorParam = None
    ) -> ReconciliationPage:
        return await reconciliation_service.page(cursor, limit)

    @get(
        "/{reconciliation_id:uuid}",
        operation_id="getReconciliation",
        summary="One reconciliation and its summary",
        responses=errors_for(401, 404),
    )
    async def get_reconciliation(
        self, reconciliation_id: uuid.UUID, reconciliation_service: ReconciliationService
    ) -> Reconciliation:
        return await reconciliation_service.get(reconciliation_id)

    @get(
        "/{reconciliation_id:uuid}/rows",
        operation_id="getReconciliationRows",
        summary="Their figures beside ours, row by row — JSON (paged), or the whole comparison as XLSX / CSV",
        responses={
            **errors_for(401, 404, 406, 422),
        },
        operation_class=TabularOperation,
    )
    async def rows(
        self,
        request: Request[Any, Any, Any],
        reconciliation_id: uuid.UUID,
        reconciliation_service: ReconciliationService,
        fmt: FormatParam = None,
        lang: LangParam = None,
        separator: SeparatorParam = "comma",
        status: Literal["matched", "only_theirs", "only_ours"] | None = None,
        with_difference: bool = False,
        limit: LimitParam = 200,
        cursor: CursorParam = None,
    ) -> Response[ReconciliationLinePage]:
        chosen = negotiate(fmt, request.headers.get("accept"))
        if chosen == "json":
            page = await reconciliation_service.lines(reconciliation_id, cursor, limit, status, with_difference)
            return Response(page)
        report = await reconciliation_service.lines_file(reconciliation_id, chosen, lang, separator)
        return file_response(report)

    @delete(
        "/{reconciliation_id:uuid}",
        operation_id="deleteReconciliation",
        summary="Delete a reconciliation and its rows",
        guards=[write_guard],
        responses=errors_for(401, 403, 404),
    )
    async def delete_reconciliation(
        self, reconciliation_id: uuid.UUID, reconciliation_service: ReconciliationService
    ) -> None:
        await reconciliation_service.delete(reconciliation_id)
