"""The streaming XLSX/CSV writers read back by openpyxl and the stdlib csv module, cell for cell."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import zipfile
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import openpyxl
import pytest

from app.lib.tabular import (
    Column,
    Marked,
    Sheet,
    TabularReadError,
    csv_stream,
    open_xlsx,
    read_csv,
    sniff_delimiter,
    to_grid,
    xlsx_stream,
)


def days_total(sums: Any) -> float | None:
    stock, orders = sums[4], sums[5]
    return None if not orders else round(stock / (orders / 7), 1)


COLUMNS = [
    Column("Бренд"),
    Column("Артикул WB"),
    Column("Остаток", "int", total="sum"),
    Column("Дней", "decimal"),
    Column("Остаток", "int", group="Коледино", total="sum"),
    Column("Заказы", "int", group="Коледино", total="sum"),
    Column("Дней", "decimal", group="Коледино", total=days_total),
    Column("Остаток", "int", group="Маркетплейс", total="sum"),
    Column("Заказы", "int", group="Маркетплейс", total="sum"),
    Column("Дней", "decimal", group="Маркетплейс"),
    Column("Дата", "date"),
]
ROWS: list[list[Any]] = [
    ["Nordic & Co <b>", "241775342", 43, 12.5, 40, 22, 12.7, 3, 1, None, dt.date(2026, 9, 1)],
    ["Urban Fox", "241775350", 0, None, Marked(0, "out"), 3, 0.0, Marked(2, "low"), 0, None, None],
    ["  spaced  ", "241775377", None, 1.25, None, None, None, 7, 2, 24.5, dt.date(2026, 9, 3)],
]


def report(rows: Any = None, **options: Any) -> Sheet:
    return Sheet("Остатки", COLUMNS, ROWS if rows is None else rows, freeze_columns=2, totals_label="Итого", **options)


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def plain(value: Any) -> Any:
    return value.value if isinstance(value, Marked) else value


def xlsx_value(value: Any) -> Any:
    """What openpyxl gives back for a written value (dates come back as midnight datetimes)."""
    value = plain(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    return value


async def test_xlsx_round_trip_cell_for_cell() -> None:
    data = await collect(xlsx_stream([report()]))
    book = openpyxl.load_workbook(io.BytesIO(data))
    ws = book["Остатки"]
    grid = [list(r) for r in ws.iter_rows(values_only=True)]

    assert grid[0] == [
        "Бренд",
        "Артикул WB",
        "Остаток",
        "Дней",
        "Коледино",
        None,
        None,
        "Маркетплейс",
        None,
        None,
        "Дата",
    ]
    assert grid[1] == [None, None, None, None, "Остаток", "Заказы", "Дней", "Остаток", "Заказы", "Дней", None]
    for written, read in zip(ROWS, grid[2:5], strict=True):
        assert read == [xlsx_value(v) for v in written]
    # totals: sums of the same rows, None where no row had a number, derived cells from the sums
    assert grid[5] == ["Итого", None, 43, None, 40, 25, round(40 / (25 / 7), 1), 12, 3, None, None]
    assert len(grid) == 6

    merged = {str(r) for r in ws.merged_cells.ranges}
    assert merged == {"A1:A2", "B1:B2", "C1:C2", "D1:D2", "E1:G1", "H1:J1", "K1:K2"}
    assert ws.freeze_panes == "C3"
    assert ws.auto_filter.ref == "A2:K5"  # header row to last data row: the totals row is not filtered


async def test_xlsx_formats_and_highlights() -> None:
    data = await collect(xlsx_stream([report()]))
    ws = openpyxl.load_workbook(io.BytesIO(data))["Остатки"]
    assert ws["C3"].number_format == "#,##0"
    assert ws["D3"].number_format == "#,##0.0"
    assert ws["K3"].number_format == "dd.mm.yyyy"
    assert ws["A1"].font.b and ws["E1"].alignment.horizontal == "center"
    assert ws["E4"].fill.fgColor.rgb == "FFFFC7CE"  # out
    assert ws["H4"].fill.fgColor.rgb == "FFFFEB9C"  # low
    assert ws["F4"].fill.fill_type is None
    assert ws["A6"].font.b  # totals row


async def test_several_sheets_title_rows_and_async_rows() -> None:
    async def rows() -> AsyncIterator[list[Any]]:
        for i in range(1500):
            yield [f"A-{i}", i, Decimal("1.5") if i % 2 else True]
            if i % 700 == 0:
                await asyncio.sleep(0)

    by_day = Sheet(
        "Остатки по дням",
        [Column("Артикул"), Column("01.09.2026", "int"), Column("02.09.2026", "decimal")],
        rows(),
        title=["Остатки по КТ по размерам"],
        autofilter=False,
    )
    info = Sheet("Общая информация", [Column("Параметр"), Column("Значение")], iter([["Период", "01–07.09"]]))
    data = await collect(xlsx_stream([info, by_day]))
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["Общая информация", "Остатки по дням"]
    assert [list(r) for r in book["Общая информация"].iter_rows(values_only=True)] == [
        ["Параметр", "Значение"],
        ["Период", "01–07.09"],
    ]
    ws = book["Остатки по дням"]
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    assert values[0][0] == "Остатки по КТ по размерам"
    assert values[1] == ["Артикул", "01.09.2026", "02.09.2026"]
    assert len(values) == 2 + 1500
    assert values[2] == ["A-0", 0, True]
    assert values[3] == ["A-1", 1, 1.5]
    assert ws.freeze_panes == "A3"
    assert ws.auto_filter.ref is None


async def test_xlsx_text_is_escaped_and_bad_numbers_are_empty() -> None:
    sheet = Sheet(
        "S",
        [Column("text"), Column("n", "decimal"), Column("id")],
        [["a\x01b<c>&\"d'", float("inf"), 1020000089903000], ["=SUM(A1)", float("nan"), 5]],
    )
    data = await collect(xlsx_stream([sheet]))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
    rows = list(openpyxl.load_workbook(io.BytesIO(data))["S"].iter_rows(values_only=True))
    # text columns keep ids exact (16 digits would lose precision as numbers); formulas stay text
    assert rows[1:] == [("ab<c>&\"d'", None, "1020000089903000"), ("=SUM(A1)", None, "5")]


async def test_xlsx_starts_before_reading_rows_and_streams_in_bounded_chunks() -> None:
    consumed = 0

    def rows() -> Iterator[list[Any]]:
        nonlocal consumed
        for i in range(20_000):
            consumed += 1
            yield [f"Товар {i} с длинным названием", i, i * 0.5]

    sheet = Sheet("S", [Column("name"), Column("n", "int"), Column("x", "decimal")], rows())
    stream = xlsx_stream([sheet], chunk_size=32 * 1024)
    first = await anext(stream)
    assert first[:4] == b"PK\x03\x04" and consumed == 0
    sizes = [len(chunk) async for chunk in stream]
    assert consumed == 20_000
    assert len(sizes) >= 4
    assert max(sizes) < 256 * 1024  # a chunk is about one batch of compressed rows, never the file


async def test_rows_of_the_wrong_width_and_bad_sheet_names_are_refused() -> None:
    with pytest.raises(ValueError, match="2 values for 3 columns"):
        await collect(xlsx_stream([Sheet("S", [Column("a"), Column("b"), Column("c")], [["x", "y"]])]))
    with pytest.raises(ValueError, match="invalid sheet name"):
        await collect(xlsx_stream([Sheet("a/b", [Column("a")], [])]))
    with pytest.raises(ValueError, match="duplicate sheet name"):
        await collect(xlsx_stream([Sheet("A", [Column("a")], []), Sheet("a", [Column("a")], [])]))


async def test_empty_sheet_has_headers_and_an_empty_totals_row() -> None:
    data = await collect(xlsx_stream([report(rows=[])]))
    ws = openpyxl.load_workbook(io.BytesIO(data))["Остатки"]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    assert len(rows) == 3 and rows[2][0] == "Итого" and rows[2][2:] == [None] * 9
    assert ws.auto_filter.ref == "A2:K2"


@pytest.mark.parametrize(("dialect", "delimiter"), [("comma", ","), ("semicolon", ";")])
async def test_csv_round_trip_in_both_dialects(dialect: Any, delimiter: str) -> None:
    rows = [
        ["Бренд; с разделителем, и запятой", "1", 3, 2.5, dt.date(2026, 9, 1)],
        ['кавычки "внутри"\nи перевод строки', "2", None, Marked(0.25, "low"), None],
        ["=cmd|' /C calc'!A0", "3", -4, None, None],
    ]
    columns = [Column("Название"), Column("Артикул"), Column("Остаток", "int", total="sum"), Column("x", "decimal")]
    columns.append(Column("Дата", "date", group="Период"))
    data = await collect(
        csv_stream(Sheet("S", columns, rows, title=["Заголовок"], totals_label="Итого"), dialect=dialect)
    )
    assert data.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter))
    comma = dialect == "semicolon"
    assert parsed[0] == ["Заголовок"]
    assert parsed[1] == ["Название", "Артикул", "Остаток", "x", "Период: Дата"]
    assert parsed[2] == [rows[0][0], "1", "3", "2,5" if comma else "2.5", "01.09.2026" if comma else "2026-09-01"]
    assert parsed[3] == [rows[1][0], "2", "", "0,25" if comma else "0.25", ""]
    assert parsed[4] == ["'=cmd|' /C calc'!A0", "3", "-4", "", ""]  # a formula is not run by Excel
    assert parsed[5] == ["Итого", "", "-1", "", ""]
    assert len(parsed) == 6


async def test_csv_streams_in_chunks() -> None:
    sheet = Sheet("S", [Column("a"), Column("n", "int")], ([f"row {i}", i] for i in range(30_000)))
    chunks = [c async for c in csv_stream(sheet, chunk_size=16 * 1024)]
    assert len(chunks) > 10
    assert sum(1 for _ in csv.reader(io.StringIO(b"".join(chunks).decode("utf-8-sig")))) == 30_001


async def test_grid_keeps_layout_marks_and_totals() -> None:
    grid = await to_grid(report())
    assert grid.header_start == 0 and grid.data_start == 2 and grid.frozen_rows == 2 and grid.frozen_columns == 2
    assert grid.values[2][10] == 46266  # 2026-09-01 as a spreadsheet serial day
    assert grid.totals_row == 5 and grid.values[5][0] == "Итого" and grid.data_end == 5
    assert (3, 4, "out") in grid.marks and (3, 7, "low") in grid.marks
    assert (0, 4, 0, 6) in grid.merges and (0, 0, 1, 0) in grid.merges


def test_read_csv_detects_encoding_and_delimiter() -> None:
    text = 'Остатки по КТ по размерам\r\nАртикул;Склад\r\nA-1;Коледино\r\n\r\n"B;2";Маркетплейс\r\n'
    rows = list(read_csv(text.encode("cp1251")))
    assert rows == [
        (1, ["Остатки по КТ по размерам"]),
        (2, ["Артикул", "Склад"]),
        (3, ["A-1", "Коледино"]),
        (5, ["B;2", "Маркетплейс"]),
    ]
    assert sniff_delimiter("a,b,c\n1,2,3") == ","
    assert sniff_delimiter("title\na\tb\tc") == "\t"


def test_xlsx_reader_refuses_garbage_and_zip_bombs() -> None:
    with pytest.raises(TabularReadError):
        open_xlsx(b"PK\x03\x04 not really a zip")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (2 * 1024 * 1024))
    with pytest.raises(TabularReadError, match="unpacks to"):
        open_xlsx(buffer.getvalue(), max_uncompressed=1024 * 1024)
    with pytest.raises(TabularReadError, match="not a valid XLSX"):
        open_xlsx(buffer.getvalue())


async def test_xlsx_reader_reads_what_the_writer_wrote() -> None:
    data = await collect(xlsx_stream([report()]))
    with open_xlsx(data) as book:
        assert book.names == ["Остатки"]
        rows = list(book.rows("Остатки"))
    assert [number for number, _ in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[2][1][:3] == ("Nordic & Co <b>", "241775342", 43)


def test_xlsx_reader_reads_shared_strings_dates_and_gaps_from_other_writers() -> None:
    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "Данные"
    ws.append(["Артикул", "Дата", "Остаток", "Цена", "Да?"])
    ws.append(["A-1", dt.datetime(2026, 9, 1), 12, 1290.5, True])
    ws.append([])  # a blank row is skipped, the row numbers stay true
    ws.append(["A-2", None, None, None, False])
    ws["G4"] = "far right"
    ws["B4"].number_format = "dd.mm.yyyy"
    buffer = io.BytesIO()
    book.save(buffer)
    with open_xlsx(buffer.getvalue()) as reader:
        assert reader.names == ["Данные"]
        rows = list(reader.rows("Данные"))
    assert rows == [
        (1, ("Артикул", "Дата", "Остаток", "Цена", "Да?")),
        (2, ("A-1", dt.datetime(2026, 9, 1), 12, 1290.5, True)),
        (4, ("A-2", None, None, None, False, None, "far right")),
    ]


def test_xlsx_reader_refuses_a_doctype() -> None:
    buffer = io.BytesIO()
    book = openpyxl.Workbook()
    book.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/workbook.xml":
                bomb = b'<!DOCTYPE workbook [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
                data = bomb + data
            target.writestr(item, data)
    with pytest.raises(TabularReadError, match="not a valid XLSX"):
        open_xlsx(out.getvalue())
