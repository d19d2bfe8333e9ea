"""A streaming CSV writer: UTF-8 with a BOM (so Excel detects the encoding), in two dialects.

``comma``: `,` between fields and `.` in decimals (RFC 4180, what scripts expect). ``semicolon``: what
Russian-locale Excel opens with a double click: `;` between fields and `,` as the decimal mark. Dates are
ISO (`2026-09-01`) in the first and `01.09.2026` in the second. Text that Excel would run as a formula
(starting with = + - @ or a tab/CR) gets a leading apostrophe unless ``guard_formulas`` is off.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any, Literal

from app.lib.tabular._model import Column, Marked, Sheet, Totals, batches, flat_headers

Dialect = Literal["comma", "semicolon"]
BOM = "\ufeff"
CHUNK = 64 * 1024
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _formatter(dialect: Dialect, guard_formulas: bool) -> Callable[[Any], Any]:
    comma = dialect == "semicolon"

    def fmt(v: Any) -> Any:
        t = type(v)
        if t is int or v is None:
            return v
        if t is str:
            return "'" + v if guard_formulas and v.startswith(_FORMULA_START) else v
        if t is Marked:
            return fmt(v.value)
        if t is float or t is Decimal:
            if t is float and not math.isfinite(v):
                return None
            text = repr(v) if t is float else str(v)
            return text.replace(".", ",") if comma else text
        if t is bool:
            return int(v)
        if isinstance(v, dt.datetime):
            return v.strftime("%d.%m.%Y %H:%M:%S") if comma else v.isoformat(sep=" ", timespec="seconds")
        if isinstance(v, dt.date):
            return v.strftime("%d.%m.%Y") if comma else v.isoformat()
        return fmt(str(v))

    return fmt


async def csv_stream(
    sheet: Sheet,
    *,
    dialect: Dialect = "comma",
    guard_formulas: bool = True,
    bom: bool = True,
    chunk_size: int = CHUNK,
) -> AsyncIterator[bytes]:
    """The sheet as CSV byte chunks: title lines and the header row at once, then rows (in chunks of about
    ``chunk_size``), then the totals."""
    columns: list[Column] = list(sheet.columns)
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, delimiter=";" if dialect == "semicolon" else ",", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n"
    )
    fmt = _formatter(dialect, guard_formulas)
    if bom:
        buffer.write(BOM)
    for line in sheet.title:
        writer.writerow([fmt(line)])
    writer.writerow([fmt(h) for h in flat_headers(columns)])
    yield _drain(buffer)  # the header at once: the first byte does not wait for the first rows to be read
    totals = Totals(columns, sheet.totals_label) if sheet.totals_label is not None else None
    async for batch in batches(sheet.rows, len(columns)):
        writer.writerows([[fmt(v) for v in row] for row in batch])
        if totals is not None:
            totals.add(batch)
        if buffer.tell() >= chunk_size:
            yield _drain(buffer)
    if totals is not None:
        writer.writerow([fmt(v) for v in totals.row()])
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode("utf-8", "replace")
    buffer.seek(0)
    buffer.truncate()
    return data
