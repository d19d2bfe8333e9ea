"""The Sheets v4 methods the product uses, with Google's request/response and error shapes.

`GET  /google/sheets/v4/spreadsheets/{id}`                  spreadsheets.get
`POST /google/sheets/v4/spreadsheets/{id}:batchUpdate`      spreadsheets.batchUpdate (validated, atomic,
                                                             recorded; sizes, sheets, merges and filters applied)
`POST /google/sheets/v4/spreadsheets/{id}/values:batchUpdate`  values.batchUpdate (RAW / USER_ENTERED)
`GET  /google/sheets/v4/spreadsheets/{id}/values/{range}`   values.get (FORMATTED_VALUE / UNFORMATTED_VALUE)

Every call needs a Bearer token from the stand-in's token endpoint and a spreadsheet shared with the
service account. Writing outside a sheet's grid is refused ("exceeds grid limits"), so a client must size
the sheet first, as with the real service. Number formats are recorded, not rendered: FORMATTED_VALUE
gives numbers as plain text.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post

from app.sandbox._replies import Reply, json_reply
from app.sandbox.sheets._requests import RequestError, apply_requests
from app.sandbox.sheets._state import A1, MAX_CELLS, GoogleState, RangeError, SheetState, Spreadsheet, a1_text, parse_a1

_STATUS = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}  # fmt: skip
_FAULT_MESSAGES = {
    429: "Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute per user' of "
    "service 'sheets.googleapis.com' for consumer 'project_number:0'.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}
UNAUTHENTICATED = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid "
    "authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)


def google_error(status: int, message: str) -> Reply:
    body = {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}
    reply = json_reply(body, status)
    if status == 401:
        reply.headers = {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'}
    return reply


class _Failed(Exception):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply


def _open(google: GoogleState, request: Request, spreadsheet_id: str, call: str) -> Spreadsheet:
    header = request.headers.get("authorization", "")
    token = google.tokens.get(header[7:].strip()) if header[:7].lower() == "bearer " else None
    if token is None or token.expires_at <= google.clock():
        raise _Failed(google_error(401, UNAUTHENTICATED))
    book = google.spreadsheets.get(spreadsheet_id)
    if book is None:
        raise _Failed(google_error(404, "Requested entity was not found."))
    book.calls[call] = book.calls.get(call, 0) + 1
    if book.faults:
        status = book.faults.popleft()
        raise _Failed(google_error(status, _FAULT_MESSAGES.get(status, "Backend Error")))
    if token.email not in book.editors:
        raise _Failed(google_error(403, "The caller does not have permission"))
    return book


def _resolve(book: Spreadsheet, text: str) -> tuple[SheetState, A1]:
    if book.sheet_by_title(text.strip()) is not None:  # "Sheet1" is a title before it is a cell
        return book.sheet_by_title(text.strip()), A1(text.strip(), 0, 0, None, None)  # type: ignore[return-value]
    try:
        a1 = parse_a1(text)
    except RangeError as exc:
        raise _Failed(google_error(400, str(exc))) from None
    sheet = book.sheets[0] if a1.sheet is None else book.sheet_by_title(a1.sheet)
    if sheet is None:
        raise _Failed(google_error(400, f"Unable to parse range: {text}"))
    return sheet, a1


def spreadsheet_body(book: Spreadsheet, base_url: str) -> dict[str, Any]:
    sheets = []
    for index, sheet in enumerate(book.sheets):
        entry: dict[str, Any] = {"properties": sheet.properties(index)}
        if sheet.merges:
            entry["merges"] = [{"sheetId": sheet.sheet_id, **m} for m in sheet.merges]
        if sheet.basic_filter is not None:
            entry["basicFilter"] = sheet.basic_filter
        sheets.append(entry)
    return {
        "spreadsheetId": book.id,
        "properties": {"title": book.title, "locale": "ru_RU", "timeZone": "Europe/Moscow"},
        "sheets": sheets,
        "spreadsheetUrl": f"{base_url}/spreadsheets/d/{book.id}/edit",
    }


def _coerce(value: Any, option: str) -> Any:
    if option == "USER_ENTERED" and isinstance(value, str) and not value.startswith("="):
        try:
            number = float(value.replace(",", "."))
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value and "," not in value else number
    return value


def _write(sheet: SheetState, a1: A1, values: list[list[Any]], option: str, major: str) -> dict[str, Any]:
    rows = values if major == "ROWS" else [list(r) for r in zip(*values, strict=False)] if values else []
    height = len(rows)
    width = max((len(r) for r in rows), default=0)
    end_row, end_col = a1.row0 + height, a1.col0 + width
    bounded = a1.row1 is not None and a1.col1 is not None and (a1.row1 - a1.row0, a1.col1 - a1.col0) != (1, 1)
    if bounded and (end_row > (a1.row1 or 0) or end_col > (a1.col1 or 0)):
        target = a1_text(sheet.title, a1.row0, a1.col0, a1.row1 or 0, a1.col1 or 0)
        raise _Failed(google_error(400, f"Requested writing within range [{target}], but tried writing beyond it"))
    if end_row > sheet.rows or end_col > sheet.columns:
        where = a1_text(sheet.title, a1.row0, a1.col0, end_row, end_col)
        raise _Failed(
            google_error(
                400, f"Range ({where}) exceeds grid limits. Max rows: {sheet.rows}, max columns: {sheet.columns}"
            )
        )
    cells = 0
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if value is None:  # null leaves the cell as it is
                continue
            if not isinstance(value, str | int | float | bool):
                raise _Failed(google_error(400, f"Invalid values[{r}][{c}]: {msgspec.json.encode(value).decode()}"))
            key = (a1.row0 + r, a1.col0 + c)
            if value == "":
                sheet.cells.pop(key, None)
            else:
                sheet.cells[key] = _coerce(value, option)
            cells += 1
    return {
        "updatedRange": a1_text(sheet.title, a1.row0, a1.col0, max(end_row, a1.row0 + 1), max(end_col, a1.col0 + 1)),
        "updatedRows": height,
        "updatedColumns": width,
        "updatedCells": cells,
    }


async def _body(request: Request) -> Any:
    try:
        return msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        raise _Failed(google_error(400, "Invalid JSON payload received.")) from None


async def _values_batch_update(google: GoogleState, request: Request, spreadsheet_id: str) -> Reply:
    book = _open(google, request, spreadsheet_id, "values.batchUpdate")
    body = await _body(request)
    if not isinstance(body, dict) or not isinstance(body.get("data", []), list):
        raise _Failed(google_error(400, "Invalid JSON payload received."))
    option = body.get("valueInputOption")
    if option not in ("RAW", "USER_ENTERED"):
        raise _Failed(google_error(400, "'valueInputOption' is required but not specified"))
    targets = []
    for i, item in enumerate(body.get("data", [])):
        if not isinstance(item, dict) or not isinstance(item.get("range"), str):
            raise _Failed(google_error(400, f"Invalid data[{i}]: a range is required"))
        values = item.get("values", [])
        if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
            raise _Failed(google_error(400, f"Invalid data[{i}].values"))
        sheet, a1 = _resolve(book, item["range"])
        targets.append((sheet, a1, values, str(item.get("majorDimension", "ROWS"))))
    total = sum(len(r) for _s, _a, v, _m in targets for r in v)
    if total > MAX_CELLS:
        raise _Failed(
            google_error(400, f"This action would increase the number of cells above the limit of {MAX_CELLS}")
        )
    responses = [{"spreadsheetId": book.id, **_write(s, a, v, option, m)} for s, a, v, m in targets]
    book.value_batches.append({"valueInputOption": option, "ranges": [d["range"] for d in body.get("data", [])]})
    return json_reply(
        {
            "spreadsheetId": book.id,
            "totalUpdatedRows": sum(r["updatedRows"] for r in responses),
            "totalUpdatedColumns": max((r["updatedColumns"] for r in responses), default=0),
            "totalUpdatedCells": sum(r["updatedCells"] for r in responses),
            "totalUpdatedSheets": len({s.sheet_id for s, _a, _v, _m in targets}),
            "responses": responses,
        }
    )


async def _batch_update(google: GoogleState, request: Request, spreadsheet_id: str) -> Reply:
    book = _open(google, request, spreadsheet_id, "batchUpdate")
    body = await _body(request)
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list):
        raise _Failed(google_error(400, "Invalid JSON payload received. 'requests' must be a list."))
    try:
        replies = apply_requests(book, requests)
    except RequestError as exc:
        raise _Failed(google_error(400, str(exc))) from None
    return json_reply({"spreadsheetId": book.id, "replies": replies})


def _render(value: Any, option: str) -> Any:
    if option != "FORMATTED_VALUE":
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _values_get(google: GoogleState, request: Request, spreadsheet_id: str, text: str) -> Reply:
    book = _open(google, request, spreadsheet_id, "values.get")
    sheet, a1 = _resolve(book, text)
    option = request.query_params.get("valueRenderOption", "FORMATTED_VALUE")
    row1 = min(sheet.rows, a1.row1 or sheet.rows)
    col1 = min(sheet.columns, a1.col1 or sheet.columns)
    rows = [
        [_render(v, option) if v != "" else "" for v in row[a1.col0 : col1]] for row in sheet.values()[a1.row0 : row1]
    ]
    while rows and not any(v != "" for v in rows[-1]):
        rows.pop()
    for row in rows:
        while row and row[-1] == "":
            row.pop()
    body: dict[str, Any] = {"range": a1_text(sheet.title, a1.row0, a1.col0, row1, col1), "majorDimension": "ROWS"}
    if rows:
        body["values"] = rows
    return json_reply(body)


def _to_response(reply: Reply) -> Response[bytes]:
    return Response(content=reply.body, status_code=reply.status, media_type=reply.media_type, headers=reply.headers)


@get("/google/sheets/v4/spreadsheets/{rest:path}")
async def sheets_get(rest: str, request: Request, google: GoogleState) -> Response[bytes]:
    spreadsheet_id, _, tail = rest.strip("/").partition("/")
    try:
        if not tail:
            book = _open(google, request, spreadsheet_id, "get")
            return _to_response(json_reply(spreadsheet_body(book, "https://docs.google.com")))
        if tail.startswith("values/") and len(tail) > len("values/"):
            return _to_response(_values_get(google, request, spreadsheet_id, tail[len("values/") :]))
    except _Failed as exc:
        return _to_response(exc.reply)
    return _to_response(google_error(404, "Requested entity was not found."))


@post("/google/sheets/v4/spreadsheets/{rest:path}", status_code=200)
async def sheets_post(rest: str, request: Request, google: GoogleState) -> Response[bytes]:
    path = rest.strip("/")
    try:
        if path.endswith("/values:batchUpdate"):
            return _to_response(await _values_batch_update(google, request, path.removesuffix("/values:batchUpdate")))
        if path.endswith(":batchUpdate") and "/" not in path:
            return _to_response(await _batch_update(google, request, path.removesuffix(":batchUpdate")))
    except _Failed as exc:
        return _to_response(exc.reply)
    return _to_response(google_error(404, "Requested entity was not found."))


ROUTES = [sheets_get, sheets_post]
