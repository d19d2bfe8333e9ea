"""The WB cabinet "История остатков" export parser on real-shaped CSV and XLSX files."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import openpyxl
import pytest

from app.domain.reports.cabinet import (
    MAX_UPLOAD_BYTES,
    CabinetFileTooLarge,
    CabinetFormatError,
    check_upload_size,
    parse_cabinet_export,
)

HEADERS = [
    "Артикул продавца", "Название", "Артикул WB", "Предмет", "Бренд", "Размер", "Регион", "Склад",
    "Доступность", "Заказали шт", "Заказали на сумму ₽", "Выкупили шт", "Выкупили на сумму ₽",
    "Процент выкупа", "Заказы в среднем за сентябрь шт", "Общее среднее кол-во заказов шт",
    "Остатки на текущий день шт", "Стоимость остатков на текущий день ₽", "Оборачиваемость текущих остатков",
    "Оборачиваемость средних остатков", "В пути к клиенту шт", "В пути от клиента шт",
    "Текущая цена с учетом скидок ₽", "Время отсутствия товара на складе", "Упущенные заказы шт",
    "Сумма упущенных заказов ₽", "Упущенные выкупы шт", "Сумма упущенных выкупов ₽",
]  # fmt: skip
ROWS = [
    ["TS-BLK-001", "Футболка хлопковая", "241775342", "Футболки", "Nordic Line", "M", "Центральный", "Коледино",
     "Актуальный", "22", "28 380,5", "18", "23 220", "82", "3,1", "3,14", "40", "51 600", "12д 17ч", "14д 3ч",
     "1", "0", "1 290", "0д 0ч", "0", "0", "0", "0"],
    ["TS-BLK-001", "Футболка хлопковая", "241775342", "Футболки", "Nordic Line", "M", "", "Маркетплейс",
     "Дефицит", "1", "1 290", "1", "1 290", "100", "0,2", "0,14", "3", "3 870", "21д 0ч", "-", "0", "0",
     "1 290", "2д 12ч", "0,4", "516", "0,4", "516"],
    ["TS-BLK-001", "Футболка хлопковая", "241775342", "Футболки", "Nordic Line", "L", "Центральный", "Коледино",
     "Не рассчитано", "0", "0", "0", "0", "0", "0", "0", "0", "0", "-", "-", "0", "0", "1 290", "7д 0ч",
     "0", "0", "0", "0"],
]  # fmt: skip


def csv_file(rows: list[list[str]] = ROWS, headers: list[str] = HEADERS, sep: str = ",", title: bool = True) -> bytes:
    def line(cells: list[str]) -> str:
        return sep.join(f'"{c}"' if (sep in c or '"' in c) else c for c in cells)

    lines = (["Остатки по КТ по размерам"] if title else []) + [line(headers)] + [line(r) for r in rows]
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode()


def xlsx_file(detail_rows: list[list[Any]] | None = None, *, sheets: tuple[str, ...] | None = None) -> bytes:
    book = openpyxl.Workbook()
    info = book.active
    info.title = "Общая информация"
    info.append(["Период", "01.09.2026 - 07.09.2026"])
    metrics = book.create_sheet("Метрики")
    metrics.append(["Заказали шт", "Количество заказанных товаров"])
    by_day = book.create_sheet("Остатки по дням")
    by_day.append(["Артикул продавца", "Название", "Артикул WB", "Предмет", "Бренд", "Размер"])
    by_day["G1"] = dt.datetime(2026, 9, 6)  # a real date cell
    by_day["H1"] = "07.09.2026"  # and a date as text
    by_day.append(["TS-BLK-001", "Футболка", 241775342, "Футболки", "Nordic Line", "M", 45, 43])
    by_day.append(["TS-BLK-001", "Футболка", 241775342, "Футболки", "Nordic Line", "L", 0, None])
    detail = book.create_sheet("Детальная информация")
    detail.append(HEADERS)
    for row in detail_rows if detail_rows is not None else ROWS:
        detail.append([_typed(c) for c in row])
    for name in [n for n in book.sheetnames if sheets is not None and n not in sheets]:
        del book[name]
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _typed(cell: str) -> Any:
    """The XLSX holds numbers as numbers (ids, counts, sums) and durations as text."""
    text = cell.replace(" ", "").replace(",", ".")
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return cell


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_rows_are_typed(kind: str) -> None:
    export = parse_cabinet_export(csv_file() if kind == "csv" else xlsx_file())
    assert export.format == kind
    assert [r.key for r in export.rows] == [(241775342, "M", "Коледино"), (241775342, "M", "Маркетплейс"),
                                           (241775342, "L", "Коледино")]  # fmt: skip
    first, market, zero = export.rows
    assert (first.line, first.vendor_code, first.ordered_units, first.stock_units) == (
        3 if kind == "csv" else 2,
        "TS-BLK-001",
        22,
        40,
    )
    assert first.ordered_sum == 28380.5 and first.buyout_percent == 82 and first.avg_orders_month == 3.1
    assert first.turnover_current_hours == 12 * 24 + 17 and first.turnover_average_hours == 14 * 24 + 3
    assert first.in_way_to_client == 1 and first.price == 1290 and first.region == "Центральный"
    assert market.is_marketplace and not first.is_marketplace
    assert market.turnover_average_hours is None and market.out_of_stock_hours == 60 and market.lost_orders_units == 0.4
    assert market.region is None  # blank is unknown, not ""
    assert (zero.stock_units, zero.ordered_units, zero.turnover_current_hours, zero.out_of_stock_hours) == (
        0,
        0,
        None,
        168,
    )


def test_xlsx_stock_by_day_and_period() -> None:
    export = parse_cabinet_export(xlsx_file())
    assert export.period == (dt.date(2026, 9, 1), dt.date(2026, 9, 7))
    assert export.dates == [dt.date(2026, 9, 6), dt.date(2026, 9, 7)]
    m, size_l = export.stock_by_day
    assert (m.nm_id, m.size, m.stock) == (241775342, "M", {dt.date(2026, 9, 6): 45, dt.date(2026, 9, 7): 43})
    assert size_l.stock == {dt.date(2026, 9, 6): 0, dt.date(2026, 9, 7): None}


def test_russian_excel_resave_semicolon_cp1251_without_title() -> None:
    # Windows-1251 has no "₽": Excel writes "?" in the headers
    data = csv_file(sep=";", title=False).decode("utf-8-sig").encode("cp1251", errors="replace")
    export = parse_cabinet_export(data)
    assert len(export.rows) == 3 and export.rows[0].line == 2 and export.rows[0].ordered_sum == 28380.5


def test_columns_are_found_by_name_and_extra_columns_ignored() -> None:
    order = list(reversed(range(len(HEADERS))))
    headers = [HEADERS[i] for i in order] + ["Новая колонка WB"]
    rows = [[r[i] for i in order] + ["x"] for r in ROWS]
    export = parse_cabinet_export(csv_file(rows, headers))
    assert [(r.key, r.stock_units) for r in export.rows] == [
        (r.key, r.stock_units) for r in parse_cabinet_export(csv_file()).rows
    ]


def test_pseudo_rows_and_totals_are_not_rows() -> None:
    extra = [list(ROWS[0]) for _ in range(2)]
    extra[0][7] = "В пути до получателей"
    extra[1][0], extra[1][2], extra[1][7] = "Итого", "", ""
    export = parse_cabinet_export(csv_file([*ROWS, *extra]))
    assert len(export.rows) == 3 and export.pseudo_rows_skipped == 2


@pytest.mark.parametrize(
    ("mutate", "line", "column", "message"),
    [
        (lambda r: r[1].__setitem__(16, "12a"), 4, "Остатки на текущий день шт", "not a number"),
        (lambda r: r[0].__setitem__(9, "2,5"), 3, "Заказали шт", "whole number"),
        (lambda r: r[0].__setitem__(18, "12 дней"), 3, "Оборачиваемость текущих остатков", "duration"),
        (lambda r: r[2].__setitem__(2, ""), 5, "Артикул WB", "required"),
        (lambda r: r[2].__setitem__(5, "M"), 5, "Склад", "same article, size and warehouse as line 3"),
    ],
)
def test_bad_values_name_the_line_and_column(mutate: Any, line: int, column: str, message: str) -> None:
    rows = [list(r) for r in ROWS]
    mutate(rows)
    with pytest.raises(CabinetFormatError) as caught:
        parse_cabinet_export(csv_file(rows))
    error = caught.value
    assert (error.line, error.column, error.status_code) == (line, column, 422)
    assert message in error.detail and f"line {line}" in error.detail and column in error.detail
    assert error.extra["errors"][0]["field"] == column


def test_foreign_and_broken_files_are_refused() -> None:
    with pytest.raises(CabinetFormatError, match="not the cabinet's stock-history export") as caught:
        parse_cabinet_export(b"date,sku,qty\n2026-09-01,1,2\n")
    assert caught.value.line == 1
    with pytest.raises(CabinetFormatError, match="required column is missing") as caught:
        parse_cabinet_export(csv_file([r[:16] + r[17:] for r in ROWS], HEADERS[:16] + HEADERS[17:]))
    assert caught.value.column == "Остатки на текущий день шт" and caught.value.line == 2
    with pytest.raises(CabinetFormatError, match="empty"):
        parse_cabinet_export(b"  \n")
    with pytest.raises(CabinetFormatError, match="not a valid XLSX"):
        parse_cabinet_export(b"PK\x03\x04garbage")
    with pytest.raises(CabinetFormatError, match="neither UTF-8 nor Windows-1251"):
        parse_cabinet_export(b"\x98\x98 binary \xff\xfe")
    with pytest.raises(CabinetFormatError, match="no sheet named"):
        parse_cabinet_export(xlsx_file(sheets=("Общая информация", "Метрики")))
    with pytest.raises(CabinetFormatError, match="line 2") as caught:
        parse_cabinet_export(b'a,b\n"unclosed,1\n')


def test_a_resaved_single_sheet_workbook_is_read_as_the_table() -> None:
    export = parse_cabinet_export(xlsx_file(sheets=("Детальная информация",)))
    assert len(export.rows) == 3 and export.stock_by_day == [] and export.period is None


def test_size_guard() -> None:
    check_upload_size(MAX_UPLOAD_BYTES)
    with pytest.raises(CabinetFileTooLarge) as caught:
        check_upload_size(MAX_UPLOAD_BYTES + 1)
    assert caught.value.status_code == 413
    with pytest.raises(CabinetFileTooLarge):
        parse_cabinet_export(b"x" * (MAX_UPLOAD_BYTES + 1))
