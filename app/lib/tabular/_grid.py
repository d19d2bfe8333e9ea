"""A sheet materialised as a grid of plain values plus its layout, for targets written in one request
(the Google Sheets push): the same header rows, merges, totals and marks as the XLSX."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.lib.tabular._model import Flag, Kind, Marked, Sheet, Totals, batches, header_layout

_EPOCH = dt.datetime(1899, 12, 30)


@dataclass(slots=True)
class Grid:
    """Rows of str / int / float / bool / None (dates as spreadsheet serial numbers) and their layout.

    Row indexes are 0-based over ``values`` (title rows, header rows, data rows, the totals row).
    """

    name: str
    values: list[list[Any]]
    kinds: list[Kind]
    widths: list[float | None]
    header_start: int
    data_start: int
    merges: list[tuple[int, int, int, int]]
    frozen_rows: int
    frozen_columns: int
    autofilter: bool
    totals_row: int | None = None
    marks: list[tuple[int, int, Flag]] = field(default_factory=list)

    @property
    def width(self) -> int:
        return len(self.kinds)

    @property
    def data_end(self) -> int:
        """One past the last data row (the totals row, when there is one, is not data)."""
        return self.totals_row if self.totals_row is not None else len(self.values)


def plain(value: Any) -> Any:
    """A JSON-ready cell value: dates become serial day numbers, decimals floats, non-finite floats None."""
    if value is None or type(value) in (int, str, bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return plain(float(value))
    if isinstance(value, dt.datetime):
        return round((value.replace(tzinfo=None) - _EPOCH).total_seconds() / 86400, 10)
    if isinstance(value, dt.date):
        return (value - _EPOCH.date()).days
    if isinstance(value, int):
        return int(value)
    return str(value)


async def to_grid(sheet: Sheet) -> Grid:
    """Read every row of the sheet into a Grid (for one-request targets; XLSX and CSV stream instead)."""
    layout = header_layout(sheet.columns)
    width = len(sheet.columns)
    values: list[list[Any]] = [[line] + [None] * (width - 1) for line in sheet.title]
    header_start = len(values)
    values.extend(list(row) for row in layout.rows)
    data_start = len(values)
    marks: list[tuple[int, int, Flag]] = []
    totals = Totals(sheet.columns, sheet.totals_label) if sheet.totals_label is not None else None
    async for batch in batches(sheet.rows, width):
        for row in batch:
            out = []
            for c, v in enumerate(row):
                if type(v) is Marked:
                    marks.append((len(values), c, v.flag))
                    v = v.value
                out.append(plain(v))
            values.append(out)
        if totals is not None:
            totals.add(batch)
    totals_row = None
    if totals is not None:
        totals_row = len(values)
        values.append([plain(v) for v in totals.row()])
    return Grid(
        name=sheet.name,
        values=values,
        kinds=[c.kind for c in sheet.columns],
        widths=[c.width for c in sheet.columns],
        header_start=header_start,
        data_start=data_start,
        merges=[(r0 + header_start, c0, r1 + header_start, c1) for r0, c0, r1, c1 in layout.merges],
        frozen_rows=data_start,
        frozen_columns=min(sheet.freeze_columns, width),
        autofilter=sheet.autofilter,
        totals_row=totals_row,
        marks=marks,
    )
