"""The WB cabinet's "История остатков" export (CSV or XLSX, as the cabinet downloads it) → typed rows.

Pure: bytes in, values out, no database and no HTTP. One row per article × size × warehouse with the
cabinet's stock and orders and the other columns; the XLSX's "Остатки по дням" sheet as a stock-by-day
matrix. Columns are found by their Russian header (order does not matter, unknown extra columns are
ignored); a malformed or foreign file raises ``CabinetFormatError`` naming the line and the column, which
the API renders as a 422 problem. ``Маркетплейс`` is the seller's own (FBS) stock summed over its
warehouses: kept as a row, flagged ``is_marketplace``. Pseudo-rows (in transit, totals) are never rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import msgspec

from app.integrations.warehouses import is_pseudo_warehouse
from app.lib.errors import AppError
from app.lib.tabular import TabularReadError, is_xlsx, open_xlsx, read_csv

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_ROWS = 500_000
TITLE = "Остатки по КТ по размерам"
MARKETPLACE_WAREHOUSE = "Маркетплейс"
DETAIL_SHEET = "Детальная информация"
BY_DAY_SHEET = "Остатки по дням"
INFO_SHEET = "Общая информация"
HEADER_SCAN_LINES = 10


class CabinetFormatError(AppError):
    """The file is not a readable cabinet export; names the line (1-based) and the column."""

    status_code = 422
    code = "invalid_cabinet_file"
    title = "Not a cabinet stock-history export"

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None, sheet: str | None = None):
        where = ", ".join(
            part
            for part in (
                f"sheet {sheet!r}" if sheet else "",
                f"line {line}" if line else "",
                f"column {column!r}" if column else "",
            )
            if part
        )
        detail = f"{where}: {message}" if where else message
        super().__init__(detail, errors=[{"field": column or "file", "message": detail, "source": "file"}])
        self.line = line
        self.column = column
        self.sheet = sheet


class CabinetFileTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"
    title = "File too large"


class CabinetRow(msgspec.Struct, frozen=True, kw_only=True):
    """One article × size × warehouse of the export. Unknown or blank figures are None, never 0."""

    line: int
    vendor_code: str
    nm_id: int
    size: str
    warehouse: str
    is_marketplace: bool
    ordered_units: int
    stock_units: int
    title: str | None = None
    subject: str | None = None
    brand: str | None = None
    region: str | None = None
    availability: str | None = None
    ordered_sum: float | None = None
    bought_units: int | None = None
    bought_sum: float | None = None
    buyout_percent: float | None = None
    avg_orders_month: float | None = None
    avg_orders: float | None = None
    stock_value: float | None = None
    turnover_current_hours: int | None = None
    turnover_average_hours: int | None = None
    in_way_to_client: int | None = None
    in_way_from_client: int | None = None
    price: float | None = None
    out_of_stock_hours: int | None = None
    lost_orders_units: float | None = None
    lost_orders_sum: float | None = None
    lost_buyouts_units: float | None = None
    lost_buyouts_sum: float | None = None

    @property
    def key(self) -> tuple[int, str, str]:
        return self.nm_id, self.size, self.warehouse


class DayStock(msgspec.Struct, frozen=True, kw_only=True):
    """One article × size of the "Остатки по дням" sheet: the stock at each date (None = blank cell)."""

    line: int
    vendor_code: str
    nm_id: int
    size: str
    stock: dict[dt.date, int | None]


class CabinetExport(msgspec.Struct, kw_only=True):
    format: Literal["csv", "xlsx"]
    rows: list[CabinetRow]
    dates: list[dt.date] = msgspec.field(default_factory=list)
    stock_by_day: list[DayStock] = msgspec.field(default_factory=list)
    period: tuple[dt.date, dt.date] | None = None
    pseudo_rows_skipped: int = 0


# ---- values ---------------------------------------------------------------------------------------------

_SPACES = re.compile(r"[\s\u00a0\u202f]+")
_SPACES_INSIDE = re.compile(r"[\u00a0\u202f\t\r\n]|  ")
_DURATION = re.compile(r"^(?:(\d+)\s*д)?\s*(?:(\d+)\s*ч)?$")
_DATE_TEXT = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})|(\d{4})-(\d{2})-(\d{2})")


class _Bad(ValueError):
    pass


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in ("", "-", "—"))


def _text(value: Any) -> str | None:
    if type(value) is str:  # the common case first: most cells need no clean-up
        text = value.strip()
        if not _SPACES_INSIDE.search(text):
            return text if text not in ("", "-", "—") else None
    if _blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _SPACES.sub(" ", str(value)).strip()


def _number(value: Any) -> float | None:
    if type(value) is str and value.isascii() and value.isdigit():
        return float(value)
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise _Bad(f"{value!r} is not a number")
    if isinstance(value, int | float):
        return float(value)
    text = _SPACES.sub("", str(value)).replace("₽", "").replace("%", "").replace(",", ".")
    try:
        return float(text)
    except ValueError:
        raise _Bad(f"{value!r} is not a number") from None


def _count(value: Any) -> int | None:
    if type(value) is int and value >= 0:
        return value
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)
    number = _number(value)
    if number is None:
        return None
    if not number.is_integer() or number < 0:
        raise _Bad(f"{value!r} is not a whole number of units")
    return int(number)


def _hours(value: Any) -> int | None:
    """ "3д 5ч" → 77; a bare number is days (as a re-saved workbook may store it)."""
    if _blank(value):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(value * 24)
    match = _DURATION.match(_SPACES.sub(" ", str(value)).strip().lower())
    if match is None or not any(match.groups()):
        raise _Bad(f"{value!r} is not a duration like '3д 5ч'")
    days, hours = match.groups()
    return int(days or 0) * 24 + int(hours or 0)


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    match = _DATE_TEXT.search(str(value or ""))
    if match is None:
        return None
    d, m, y, y2, m2, d2 = match.groups()
    try:
        return dt.date(int(y), int(m), int(d)) if y else dt.date(int(y2), int(m2), int(d2))
    except ValueError:
        return None


# ---- columns --------------------------------------------------------------------------------------------

Parser = Callable[[Any], Any]
# (field, header, parser, required); a header ending in "*" matches by prefix (the month is in the name)
FIELDS: tuple[tuple[str, str, Parser, bool], ...] = (
    ("vendor_code", "Артикул продавца", _text, True),
    ("title", "Название", _text, False),
    ("nm_id", "Артикул WB", _count, True),
    ("subject", "Предмет", _text, False),
    ("brand", "Бренд", _text, False),
    ("size", "Размер", _text, True),
    ("region", "Регион", _text, False),
    ("warehouse", "Склад", _text, True),
    ("availability", "Доступность", _text, False),
    ("ordered_units", "Заказали шт", _count, True),
    ("ordered_sum", "Заказали на сумму ₽", _number, False),
    ("bought_units", "Выкупили шт", _count, False),
    ("bought_sum", "Выкупили на сумму ₽", _number, False),
    ("buyout_percent", "Процент выкупа", _number, False),
    ("avg_orders_month", "Заказы в среднем за*", _number, False),
    ("avg_orders", "Общее среднее кол-во заказов шт", _number, False),
    ("stock_units", "Остатки на текущий день шт", _count, True),
    ("stock_value", "Стоимость остатков на текущий день ₽", _number, False),
    ("turnover_current_hours", "Оборачиваемость текущих остатков", _hours, False),
    ("turnover_average_hours", "Оборачиваемость средних остатков", _hours, False),
    ("in_way_to_client", "В пути к клиенту шт", _count, False),
    ("in_way_from_client", "В пути от клиента шт", _count, False),
    ("price", "Текущая цена с учетом скидок ₽", _number, False),
    ("out_of_stock_hours", "Время отсутствия товара на складе", _hours, False),
    ("lost_orders_units", "Упущенные заказы шт", _number, False),
    ("lost_orders_sum", "Сумма упущенных заказов ₽", _number, False),
    ("lost_buyouts_units", "Упущенные выкупы шт", _number, False),
    ("lost_buyouts_sum", "Сумма упущенных выкупов ₽", _number, False),
)
BY_DAY_FIELDS = FIELDS[:6]
_ZERO_IF_BLANK = {"ordered_units", "stock_units"}  # the cabinet leaves zero cells blank in some exports


def _norm(header: Any) -> str:
    # Windows-1251 has no "₽": a CSV re-saved by Russian Excel carries "?" in its place
    text = str(header or "").replace("₽", " ").rstrip("? ")
    return _SPACES.sub(" ", text).strip().casefold().replace("ё", "е")


def _match_header(
    cells: Sequence[Any], fields: Sequence[tuple[str, str, Parser, bool]]
) -> dict[str, tuple[int, str, Parser]] | None:
    """field → (index, header, parser) when this row holds the required headers, else None."""
    names = [_norm(c) for c in cells]
    found: dict[str, tuple[int, str, Parser]] = {}
    for field, header, parse, _required in fields:
        want = _norm(header.rstrip("*"))
        hits = [i for i, n in enumerate(names) if (n.startswith(want) if header.endswith("*") else n == want)]
        if hits:
            found[field] = (hits[0], str(cells[hits[0]]).strip(), parse)
    required = [f for f, _h, _p, req in fields if req]
    if sum(f in found for f in required) < 2:  # not a header row at all
        return None
    return found


def _header(
    records: Iterable[tuple[int, Sequence[Any]]], fields: Sequence[tuple[str, str, Parser, bool]], sheet: str | None
) -> tuple[int, Sequence[Any], dict[str, tuple[int, str, Parser]]]:
    for scanned, (line, cells) in enumerate(records):
        found = _match_header(cells, fields)
        if found is not None:
            for field, header, _parse, required in fields:
                if required and field not in found:
                    raise CabinetFormatError("required column is missing", line=line, column=header, sheet=sheet)
            return line, cells, found
        if scanned + 1 >= HEADER_SCAN_LINES:
            break
    raise CabinetFormatError(
        f"no header row with 'Артикул продавца', 'Артикул WB' and 'Склад' in the first {HEADER_SCAN_LINES} lines:"
        " this is not the cabinet's stock-history export",
        line=1,
        sheet=sheet,
    )


def _parse_rows(records: Iterable[tuple[int, Sequence[Any]]], sheet: str | None) -> tuple[list[CabinetRow], int]:
    iterator = iter(records)
    _line, _cells, found = _header(iterator, FIELDS, sheet)
    rows: list[CabinetRow] = []
    seen: dict[tuple[int, str, str], int] = {}
    pseudo = 0
    for line, cells in iterator:
        if len(rows) >= MAX_ROWS:
            raise CabinetFormatError(f"more than {MAX_ROWS} rows", line=line, sheet=sheet)
        warehouse_index = found["warehouse"][0]
        warehouse = _text(cells[warehouse_index]) if warehouse_index < len(cells) else None
        first = _text(cells[0]) if cells else None
        if is_pseudo_warehouse(warehouse) or (first or "").casefold().startswith(("итого", "всего")):
            pseudo += 1
            continue
        values: dict[str, Any] = {"line": line}
        for field, (index, header, parse) in found.items():
            raw = cells[index] if index < len(cells) else None
            try:
                value = parse(raw)
            except _Bad as exc:
                raise CabinetFormatError(str(exc), line=line, column=header, sheet=sheet) from None
            if value is None and field in _ZERO_IF_BLANK:
                value = 0
            values[field] = value
        for field in ("vendor_code", "nm_id", "warehouse"):
            if values.get(field) is None:
                raise CabinetFormatError("the value is required", line=line, column=found[field][1], sheet=sheet)
        values["size"] = values.get("size") or ""
        values["is_marketplace"] = values["warehouse"].casefold() == MARKETPLACE_WAREHOUSE.casefold()
        row = CabinetRow(**values)
        if row.key in seen:
            raise CabinetFormatError(
                f"the same article, size and warehouse as line {seen[row.key]}", line=line, column="Склад", sheet=sheet
            )
        seen[row.key] = line
        rows.append(row)
    return rows, pseudo


def _parse_by_day(records: Iterable[tuple[int, Sequence[Any]]]) -> tuple[list[dt.date], list[DayStock]]:
    iterator = iter(records)
    _line, cells, found = _header(iterator, BY_DAY_FIELDS, BY_DAY_SHEET)
    used = {index for index, _h, _p in found.values()}
    date_columns = [(i, d) for i, c in enumerate(cells) if i not in used and (d := _date(c)) is not None]
    if not date_columns:
        raise CabinetFormatError("no date columns after the product columns", line=_line, sheet=BY_DAY_SHEET)
    out: list[DayStock] = []
    for line, row in iterator:
        try:
            nm_id = _count(row[found["nm_id"][0]])
            vendor = _text(row[found["vendor_code"][0]])
            size = _text(row[found["size"][0]]) if "size" in found else None
        except (_Bad, IndexError):
            raise CabinetFormatError(
                "not an article number", line=line, column="Артикул WB", sheet=BY_DAY_SHEET
            ) from None
        if nm_id is None:
            continue
        stock: dict[dt.date, int | None] = {}
        for index, day in date_columns:
            try:
                stock[day] = _count(row[index] if index < len(row) else None)
            except _Bad as exc:
                raise CabinetFormatError(str(exc), line=line, column=str(cells[index]), sheet=BY_DAY_SHEET) from None
        out.append(DayStock(line=line, vendor_code=vendor or "", nm_id=nm_id, size=size or "", stock=stock))
    return [d for _i, d in date_columns], out


def _period(records: Iterable[tuple[int, Sequence[Any]]]) -> tuple[dt.date, dt.date] | None:
    for _line, cells in records:
        text = " ".join(str(c) for c in cells if c is not None)
        if "период" in text.casefold():
            dates = [d for m in _DATE_TEXT.finditer(text) if (d := _date(m.group(0))) is not None]
            if len(dates) >= 2:
                return dates[0], dates[-1]
    return None


# ---- entry points ---------------------------------------------------------------------------------------


def check_upload_size(size: int) -> None:
    """Refuse a file over the 20 MB limit before reading it (the endpoint answers 413)."""
    if size > MAX_UPLOAD_BYTES:
        raise CabinetFileTooLarge(f"the file is {size} bytes; the limit is {MAX_UPLOAD_BYTES} bytes (20 MB)")


def parse_cabinet_export(data: bytes) -> CabinetExport:
    """Parse a cabinet "История остатков" export, CSV or XLSX (told apart by content, not by name)."""
    check_upload_size(len(data))
    if not data.strip():
        raise CabinetFormatError("the file is empty", line=1)
    try:
        if is_xlsx(data):
            return _parse_xlsx(data)
        rows, pseudo = _parse_rows(read_csv(data), None)
    except TabularReadError as exc:
        raise CabinetFormatError(str(exc)) from None
    return CabinetExport(format="csv", rows=rows, pseudo_rows_skipped=pseudo)


def _parse_xlsx(data: bytes) -> CabinetExport:
    with open_xlsx(data) as book:
        names = book.names
        # the cabinet's own workbook has a detail sheet; a re-saved single-sheet file is read as one table
        detail = DETAIL_SHEET if DETAIL_SHEET in names else names[0] if len(names) == 1 else None
        if detail is None:
            raise CabinetFormatError(f"no sheet named {DETAIL_SHEET!r} (sheets: {', '.join(names)})")
        rows, pseudo = _parse_rows(book.rows(detail), detail)
        dates: list[dt.date] = []
        by_day: list[DayStock] = []
        if BY_DAY_SHEET in names:
            dates, by_day = _parse_by_day(book.rows(BY_DAY_SHEET))
        period = _period(book.rows(INFO_SHEET)) if INFO_SHEET in names else None
    if period is None and dates:
        period = (min(dates), max(dates))
    return CabinetExport(
        format="xlsx", rows=rows, dates=dates, stock_by_day=by_day, period=period, pseudo_rows_skipped=pseudo
    )
