"""A report grid's layout as one spreadsheets.batchUpdate: size, frozen panes, merges, formats, marks.

The sheet is sized to the report exactly (rows past the end are dropped, so a shorter report leaves no
stale rows behind), every previous merge and format inside it is reset, then the report's own are set.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

from app.lib.tabular import Grid

MAX_MARK_RANGES = 5_000  # highlighted runs per push; past it the push is not highlighted at all
_NUMBER_FORMATS = {
    "int": {"type": "NUMBER", "pattern": "#,##0"},
    "decimal": {"type": "NUMBER", "pattern": "#,##0.0"},
    "date": {"type": "DATE", "pattern": "dd.mm.yyyy"},
    "text": {"type": "TEXT"},
}
_HEADER = {"red": 0.851, "green": 0.882, "blue": 0.949}
_TOTAL = {"red": 0.949, "green": 0.949, "blue": 0.949}
_MARKS = {"low": {"red": 1.0, "green": 0.922, "blue": 0.612}, "out": {"red": 1.0, "green": 0.78, "blue": 0.808}}


def grid_size(grid: Grid) -> tuple[int, int]:
    """Rows and columns of the sheet: the report, and never so small that every row is frozen."""
    return max(len(grid.values), grid.frozen_rows + 1), max(grid.width, grid.frozen_columns + 1)


def _range(sheet_id: int, r0: int, r1: int, c0: int, c1: int) -> dict[str, int]:
    return {"sheetId": sheet_id, "startRowIndex": r0, "endRowIndex": r1, "startColumnIndex": c0, "endColumnIndex": c1}


def _repeat(rng: dict[str, int], fmt: dict[str, Any], fields: str) -> dict[str, Any]:
    return {"repeatCell": {"range": rng, "cell": {"userEnteredFormat": fmt}, "fields": fields}}


def mark_runs(grid: Grid) -> list[tuple[int, int, int, str]]:
    """Highlighted cells as (column, first row, end row, flag) runs of consecutive rows."""
    runs: list[tuple[int, int, int, str]] = []
    ordered = sorted(grid.marks, key=lambda m: (m[1], m[2], m[0]))
    for (column, flag), cells in groupby(ordered, key=lambda m: (m[1], m[2])):
        start = end = -2
        for row, _c, _f in cells:
            if row != end:
                if start >= 0:
                    runs.append((column, start, end, flag))
                start = row
            end = row + 1
        runs.append((column, start, end, flag))
    return runs


def format_requests(grid: Grid, sheet_id: int) -> tuple[list[dict[str, Any]], int]:
    """The formatting requests for one push, and how many highlighted runs were dropped (over the cap)."""
    rows, columns = grid_size(grid)
    whole = _range(sheet_id, 0, rows, 0, columns)
    out: list[dict[str, Any]] = [
        {
            "updateSheetProperties": {
                "properties": {
                    "sheetId": sheet_id,
                    "gridProperties": {
                        "rowCount": rows,
                        "columnCount": columns,
                        "frozenRowCount": grid.frozen_rows,
                        "frozenColumnCount": grid.frozen_columns,
                    },
                },
                "fields": "gridProperties.rowCount,gridProperties.columnCount,"
                "gridProperties.frozenRowCount,gridProperties.frozenColumnCount",
            }
        },
        {"unmergeCells": {"range": whole}},
        _repeat(whole, {}, "userEnteredFormat"),
    ]
    if grid.header_start:
        out.append(
            _repeat(
                _range(sheet_id, 0, grid.header_start, 0, columns),
                {"textFormat": {"bold": True}},
                "userEnteredFormat.textFormat",
            )
        )
    header = {
        "backgroundColor": _HEADER,
        "textFormat": {"bold": True},
        "horizontalAlignment": "CENTER",
        "verticalAlignment": "MIDDLE",
        "wrapStrategy": "WRAP",
    }
    out.append(
        _repeat(_range(sheet_id, grid.header_start, grid.data_start, 0, grid.width), header, "userEnteredFormat")
    )
    out += [
        {"mergeCells": {"range": _range(sheet_id, r0, r1 + 1, c0, c1 + 1), "mergeType": "MERGE_ALL"}}
        for r0, c0, r1, c1 in grid.merges
    ]
    end = len(grid.values)
    if end > grid.data_start:
        for c, kind in enumerate(grid.kinds):
            fmt = {"numberFormat": _NUMBER_FORMATS[kind]}
            out.append(_repeat(_range(sheet_id, grid.data_start, end, c, c + 1), fmt, "userEnteredFormat.numberFormat"))
    if grid.totals_row is not None:
        total = {"backgroundColor": _TOTAL, "textFormat": {"bold": True}}
        out.append(
            _repeat(
                _range(sheet_id, grid.totals_row, grid.totals_row + 1, 0, grid.width),
                total,
                "userEnteredFormat.backgroundColor,userEnteredFormat.textFormat",
            )
        )
    runs = mark_runs(grid)
    dropped = len(runs) if len(runs) > MAX_MARK_RANGES else 0
    if not dropped:
        for column, r0, r1, flag in runs:
            out.append(
                _repeat(
                    _range(sheet_id, r0, r1, column, column + 1),
                    {"backgroundColor": _MARKS[flag]},
                    "userEnteredFormat.backgroundColor",
                )
            )
    if grid.autofilter:
        out.append(
            {
                "setBasicFilter": {
                    "filter": {"range": _range(sheet_id, grid.data_start - 1, grid.data_end, 0, grid.width)}
                }
            }
        )
    for c, width in enumerate(grid.widths):
        if width:
            out.append(
                {
                    "updateDimensionProperties": {
                        "range": {"sheetId": sheet_id, "dimension": "COLUMNS", "startIndex": c, "endIndex": c + 1},
                        "properties": {"pixelSize": round(width * 7 + 5)},
                        "fields": "pixelSize",
                    }
                }
            )
    return out, dropped
