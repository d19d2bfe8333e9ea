"""spreadsheets.batchUpdate requests: validated in order against a working copy, applied all or nothing.

What changes the stand-in's state: `addSheet`, `deleteSheet`, `updateSheetProperties` (title, grid size —
shrinking drops the cells outside —, frozen rows/columns), `mergeCells`/`unmergeCells`, `setBasicFilter`/
`clearBasicFilter`. Every other known request (formats, borders, widths, conditional formats…) is checked
for a valid grid range and recorded, which is what tests read back.
"""

from __future__ import annotations

import copy
from typing import Any

from app.sandbox.sheets._state import SheetState, Spreadsheet

RECORDED_ONLY = {
    "repeatCell", "updateCells", "updateBorders", "addConditionalFormatRule", "deleteConditionalFormatRule",
    "updateConditionalFormatRule", "updateDimensionProperties", "autoResizeDimensions", "insertDimension",
    "deleteDimension", "appendDimension", "setDataValidation", "addBanding", "deleteBanding",
    "updateSpreadsheetProperties", "sortRange", "addFilterView", "deleteFilterView", "addProtectedRange",
    "deleteProtectedRange", "updateProtectedRange", "addNamedRange", "deleteNamedRange", "findReplace",
}  # fmt: skip
APPLIED = {
    "addSheet", "deleteSheet", "updateSheetProperties", "mergeCells", "unmergeCells", "setBasicFilter",
    "clearBasicFilter",
}  # fmt: skip


class RequestError(ValueError):
    pass


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RequestError(f"{where}: expected a non-negative integer")
    return value


def _sheet(sheets: list[SheetState], sheet_id: Any, where: str) -> SheetState:
    found = next((s for s in sheets if s.sheet_id == sheet_id), None)
    if found is None:
        raise RequestError(f"{where}: No grid with id: {sheet_id}")
    return found


def _grid_range(sheets: list[SheetState], rng: Any, where: str) -> tuple[SheetState, dict[str, int]]:
    if not isinstance(rng, dict):
        raise RequestError(f"{where}: a GridRange is required")
    sheet = _sheet(sheets, rng.get("sheetId", 0), where)
    bounds = {
        "startRowIndex": _int(rng.get("startRowIndex", 0), where),
        "endRowIndex": _int(rng.get("endRowIndex", sheet.rows), where),
        "startColumnIndex": _int(rng.get("startColumnIndex", 0), where),
        "endColumnIndex": _int(rng.get("endColumnIndex", sheet.columns), where),
    }
    if bounds["startRowIndex"] > bounds["endRowIndex"] or bounds["startColumnIndex"] > bounds["endColumnIndex"]:
        raise RequestError(f"{where}: the range ends before it starts")
    if bounds["endRowIndex"] > sheet.rows or bounds["endColumnIndex"] > sheet.columns:
        raise RequestError(
            f"{where}: Range ({sheet.title}) exceeds grid limits. Max rows: {sheet.rows}, max columns: {sheet.columns}"
        )
    return sheet, bounds


def _overlaps(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["startRowIndex"] < b["endRowIndex"]
        and b["startRowIndex"] < a["endRowIndex"]
        and a["startColumnIndex"] < b["endColumnIndex"]
        and b["startColumnIndex"] < a["endColumnIndex"]
    )


def _ranges_in(kind: str, body: dict[str, Any]) -> list[Any]:
    """The GridRanges a recorded-only request points at (so a wrong sheet id or range is still refused)."""
    if kind in ("repeatCell", "updateBorders", "setDataValidation", "sortRange"):
        return [body.get("range")]
    if kind == "addConditionalFormatRule":
        return list((body.get("rule") or {}).get("ranges") or [])
    if kind == "updateCells" and "range" in body:
        return [body["range"]]
    return []


def apply_requests(book: Spreadsheet, requests: list[Any]) -> list[dict[str, Any]]:
    """Apply every request or none; returns Google's `replies` (one per request, mostly empty)."""
    sheets = [copy.copy(s) for s in book.sheets]
    replies: list[dict[str, Any]] = []
    for i, request in enumerate(requests):
        if not isinstance(request, dict) or len(request) != 1:
            raise RequestError(f"Invalid requests[{i}]: exactly one kind of request is required")
        ((kind, body),) = request.items()
        where = f"Invalid requests[{i}].{kind}"
        if kind not in RECORDED_ONLY and kind not in APPLIED:
            raise RequestError(f"Invalid JSON payload received. Unknown name \"{kind}\" at 'requests[{i}]'")
        if not isinstance(body, dict):
            raise RequestError(f"{where}: an object is required")
        replies.append(_apply(sheets, kind, body, where))
    book.sheets = sheets
    book.requests.extend(requests)
    return replies


def _apply(sheets: list[SheetState], kind: str, body: dict[str, Any], where: str) -> dict[str, Any]:
    if kind in RECORDED_ONLY:
        for rng in _ranges_in(kind, body):
            _grid_range(sheets, rng, where)
        return {}
    if kind == "addSheet":
        props = body.get("properties") or {}
        title = str(props.get("title") or f"Sheet{len(sheets) + 1}")
        if any(s.title.casefold() == title.casefold() for s in sheets):
            raise RequestError(f'{where}: A sheet with the name "{title}" already exists. Please enter another name.')
        sheet_id = props.get("sheetId", max((s.sheet_id for s in sheets), default=0) + 1)
        if any(s.sheet_id == sheet_id for s in sheets):
            raise RequestError(f"{where}: A sheet with the id {sheet_id} already exists")
        grid = props.get("gridProperties") or {}
        sheet = SheetState(sheet_id=_int(sheet_id, where), title=title)
        sheet.rows = _int(grid.get("rowCount", sheet.rows), where)
        sheet.columns = _int(grid.get("columnCount", sheet.columns), where)
        sheets.append(sheet)
        return {"addSheet": {"properties": sheet.properties(len(sheets) - 1)}}
    if kind == "deleteSheet":
        sheet = _sheet(sheets, body.get("sheetId"), where)
        if len(sheets) == 1:
            raise RequestError(f"{where}: You can't remove all the sheets in a document.")
        sheets.remove(sheet)
        return {}
    if kind == "updateSheetProperties":
        return _update_properties(sheets, body, where)
    if kind == "mergeCells":
        sheet, bounds = _grid_range(sheets, body.get("range"), where)
        if any(_overlaps(bounds, m) for m in sheet.merges):
            raise RequestError(f"{where}: You can't merge cells that overlap an existing merge")
        sheet.merges = [*sheet.merges, bounds]
        return {}
    if kind == "unmergeCells":
        sheet, bounds = _grid_range(sheets, body.get("range"), where)
        sheet.merges = [m for m in sheet.merges if not _overlaps(bounds, m)]
        return {}
    if kind == "setBasicFilter":
        sheet, bounds = _grid_range(sheets, (body.get("filter") or {}).get("range"), where)
        sheet.basic_filter = {"range": {"sheetId": sheet.sheet_id, **bounds}}
        return {}
    sheet = _sheet(sheets, body.get("sheetId"), where)  # clearBasicFilter
    sheet.basic_filter = None
    return {}


def _update_properties(sheets: list[SheetState], body: dict[str, Any], where: str) -> dict[str, Any]:
    props = body.get("properties") or {}
    fields = str(body.get("fields") or "")
    if not fields:
        raise RequestError(f"{where}: 'fields' is required")
    wanted = {f.strip() for f in fields.split(",")}
    every = "*" in wanted
    sheet = _sheet(sheets, props.get("sheetId", 0), where)
    grid = props.get("gridProperties") or {}

    def chosen(name: str, value: Any) -> bool:
        return value is not None and (every or name in wanted or "gridProperties" in wanted)

    if (every or "title" in wanted) and props.get("title"):
        title = str(props["title"])
        if any(s is not sheet and s.title.casefold() == title.casefold() for s in sheets):
            raise RequestError(f'{where}: A sheet with the name "{title}" already exists.')
        sheet.title = title
    for name, attr in (
        ("gridProperties.rowCount", "rows"),
        ("gridProperties.columnCount", "columns"),
        ("gridProperties.frozenRowCount", "frozen_rows"),
        ("gridProperties.frozenColumnCount", "frozen_columns"),
    ):
        value = grid.get(name.split(".")[1])
        if chosen(name, value):
            setattr(sheet, attr, _int(value, where))
    if sheet.rows < 1 or sheet.columns < 1:
        raise RequestError(f"{where}: a sheet needs at least one row and one column")
    if sheet.frozen_rows >= sheet.rows or sheet.frozen_columns >= sheet.columns:
        raise RequestError(f"{where}: You can't freeze all visible rows on the sheet.")
    sheet.truncate()
    sheet.merges = [m for m in sheet.merges if m["endRowIndex"] <= sheet.rows and m["endColumnIndex"] <= sheet.columns]
    return {}
