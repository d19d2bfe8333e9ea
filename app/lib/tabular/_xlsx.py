"""A streaming XLSX writer: sheet XML written by hand into a zip stream, bytes out as they are compressed.

Nothing is held beyond one batch of rows and the compressor's window, so a 50 000-row report starts
sending at once and stays within a few MB. The package is a plain OOXML workbook: inline strings (no
shared-string table to keep in memory), one styles part, zip members with data descriptors (the output is
never seeked), each batch compressed in a worker thread while the next is rendered. ``workbook.xml`` is
written last because the autofilter's defined name needs each sheet's last row. Why hand-written rather
than xlsxwriter or openpyxl: ``bench/reports.py`` and docs/decisions.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import operator
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from typing import Any

from app.lib.tabular._model import Column, Marked, Sheet, Totals, batches, header_layout
from app.lib.tabular._parts import (
    HEADER_STYLE,
    MAIN_NS,
    REL_NS,
    TITLE_STYLE,
    XML_DECL,
    check_sheet_names,
    column_letter,
    content_types,
    escape_text,
    needs_escape,
    root_rels,
    style_id,
    styles,
    workbook,
    workbook_rels,
)
from app.lib.tabular._zipstream import ZipStream

CHUNK = 64 * 1024
# zlib level 1: the XML is so repetitive that level 6 makes the file only ~15 % smaller at twice the CPU.
COMPRESS_LEVEL = 1
_EPOCH = dt.date(1899, 12, 30)
_DEFAULT_WIDTH = {"text": 16.0, "int": 10.0, "decimal": 10.0, "date": 11.0}


async def xlsx_stream(sheets: Sequence[Sheet], *, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
    """The workbook as a stream of byte chunks; sheets are written in order, each from its own rows."""
    if not sheets:
        raise ValueError("a workbook needs at least one sheet")
    check_sheet_names([s.name for s in sheets])
    for sheet in sheets:
        if not sheet.columns:
            raise ValueError(f"sheet {sheet.name!r} has no columns")
    loop = asyncio.get_running_loop()
    archive = ZipStream(COMPRESS_LEVEL)
    yield (
        archive.member("[Content_Types].xml", content_types(len(sheets)).encode())
        + archive.member("_rels/.rels", root_rels().encode())
        + archive.member("xl/styles.xml", styles().encode())
    )
    filters: list[str | None] = []
    for number, sheet in enumerate(sheets, 1):
        writer = _SheetWriter(sheet, selected=number == 1)
        entry, header = archive.open(f"xl/worksheets/sheet{number}.xml")
        out = [header, archive.data(entry.feed("".join(writer.head()).encode()))]
        pending: asyncio.Future[bytes] | None = None
        try:
            async for text in writer.body():
                data = text.encode("utf-8", "replace")
                if pending is not None:
                    out.append(archive.data(await pending))
                # compress this batch in a thread while the next one is rendered
                pending = loop.run_in_executor(None, entry.feed, data)
                if sum(map(len, out)) >= chunk_size:
                    yield b"".join(out)
                    out = []
            if pending is not None:
                out.append(archive.data(await pending))
                pending = None
        finally:
            if pending is not None:  # the consumer went away: let the thread finish with the entry first
                await asyncio.wait([pending])
        out.append(archive.data(entry.feed(writer.tail().encode())))
        out.append(archive.close_entry(entry))
        filters.append(writer.filter_ref)
        yield b"".join(out)
    yield (
        archive.member("xl/workbook.xml", workbook([s.name for s in sheets], filters).encode())
        + archive.member("xl/_rels/workbook.xml.rels", workbook_rels(len(sheets)).encode())
        + archive.close()
    )


class _SheetWriter:
    """One worksheet's XML: head (view, columns, title and header rows), body (rows), tail (filter, merges)."""

    def __init__(self, sheet: Sheet, *, selected: bool) -> None:
        self.sheet = sheet
        self.columns: Sequence[Column] = sheet.columns
        self.selected = selected
        self.layout = header_layout(sheet.columns)
        self.header_top = len(sheet.title)  # 0-based row index of the first header row
        self.first_data = self.header_top + len(self.layout.rows)  # 0-based index of the first data row
        self.next_row = 0  # 0-based index of the next row to write
        self.filter_ref: str | None = None
        self.letters = [column_letter(i) for i in range(len(self.columns))]
        self.totals = Totals(self.columns, sheet.totals_label) if sheet.totals_label is not None else None

    # ---- head -------------------------------------------------------------------------------------------------

    def head(self) -> list[str]:
        parts = [XML_DECL, f'<worksheet xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">', self._views()]
        parts.append('<sheetFormatPr defaultRowHeight="15"/>')
        parts.append("<cols>")
        for i, column in enumerate(self.columns):
            width = column.width or max(_DEFAULT_WIDTH[column.kind], min(50.0, len(column.header) * 1.1 + 2))
            parts.append(f'<col min="{i + 1}" max="{i + 1}" width="{width:.1f}" customWidth="1"/>')
        parts.append("</cols><sheetData>")
        for line in self.sheet.title:
            parts.append(self._text_row([line], TITLE_STYLE))
        for cells in self.layout.rows:
            parts.append(self._text_row(cells, HEADER_STYLE, fill_blanks=True))
        return parts

    def _views(self) -> str:
        x = min(self.sheet.freeze_columns, len(self.columns))
        y = self.first_data
        selected = ' tabSelected="1"' if self.selected else ""
        if not x and not y:
            return f'<sheetViews><sheetView workbookViewId="0"{selected}/></sheetViews>'
        top_left = f"{column_letter(x)}{y + 1}"
        pane = "bottomRight" if x and y else "bottomLeft" if y else "topRight"
        split = (f' xSplit="{x}"' if x else "") + (f' ySplit="{y}"' if y else "")
        return (
            f'<sheetViews><sheetView workbookViewId="0"{selected}>'
            f'<pane{split} topLeftCell="{top_left}" activePane="{pane}" state="frozen"/>'
            f'<selection pane="{pane}" activeCell="{top_left}" sqref="{top_left}"/>'
            "</sheetView></sheetViews>"
        )

    def _text_row(self, cells: Sequence[str | None], style: int, *, fill_blanks: bool = False) -> str:
        self.next_row += 1
        r = str(self.next_row)
        out = [f'<row r="{r}">']
        for i, value in enumerate(cells):
            ref = self.letters[i] if i < len(self.letters) else column_letter(i)
            if value is None:
                if fill_blanks:  # blank cells under a merge keep the header's fill and border
                    out.append(f'<c r="{ref}{r}" s="{style}"/>')
                continue
            out.append(
                f'<c r="{ref}{r}" s="{style}" t="inlineStr"><is><t xml:space="preserve">'
                f"{escape_text(value)}</t></is></c>"
            )
        out.append("</row>")
        return "".join(out)

    # ---- body -------------------------------------------------------------------------------------------------

    async def body(self) -> AsyncIterator[str]:
        # Each distinct row shape (the tuple of its value types) gets one %-format string, built once: a row
        # is then one C-level format call instead of a few string operations per cell. Cells carry no `r`
        # attribute (their position is their order, empty cells are `<c/>`), a third less XML to compress.
        plans: dict[tuple[type, ...], _Plan] = {}
        totals = self.totals
        n = self.next_row
        async for batch in batches(self.sheet.rows, len(self.columns)):
            parts: list[str] = []
            append = parts.append
            for row in batch:
                n += 1
                shape = tuple(map(type, row))
                plan = plans.get(shape)
                if plan is None:
                    plan = plans[shape] = self._plan(shape)
                values = plan.pick(row)
                if plan.texts and needs_escape(plan.join_texts(values)):
                    for i in plan.texts:
                        values[i] = escape_text(values[i])
                for i in plan.others:
                    values[i] = self._slow_cell(plan.columns[i], values[i], "body")
                if not plan.floats or math.isfinite(plan.sum_floats(values)):
                    append(plan.format % (n, *values))
                else:  # inf or nan somewhere: no such number in a spreadsheet, the cell stays empty
                    append(
                        f'<row r="{n}">' + "".join(self._slow_cell(c, v, "body") for c, v in enumerate(row)) + "</row>"
                    )
            if totals is not None:
                totals.add(batch)
            self.next_row = n
            yield "".join(parts)
        last_data = self.next_row  # 1-based number of the last data row (or of the last header row)
        if totals is not None:
            yield self._totals_row(totals.row())
        if self.sheet.autofilter:
            first = self.first_data  # the last header row, 1-based
            self.filter_ref = f"A{first}:{self.letters[-1]}{max(first, last_data)}"

    def _plan(self, shape: tuple[type, ...]) -> _Plan:
        pieces = ['<row r="%d">']
        positions: list[int] = []
        texts: list[int] = []
        floats: list[int] = []
        others: list[int] = []
        for c, t in enumerate(shape):
            kind = self.columns[c].kind
            style = style_id(kind, "body")
            if t is type(None):
                pieces.append("<c/>")
                continue
            slot = len(positions)
            positions.append(c)
            if t is str:
                pieces.append(f'<c s="{style}" t="inlineStr"><is><t xml:space="preserve">%s</t></is></c>')
                texts.append(slot)
            elif kind in ("int", "decimal") and t is int:
                pieces.append(f'<c s="{style}"><v>%d</v></c>')
            elif kind in ("int", "decimal") and t is float:
                pieces.append(f'<c s="{style}"><v>%r</v></c>')
                floats.append(slot)
            else:
                pieces.append("%s")
                others.append(slot)
        pieces.append("</row>")
        return _Plan("".join(pieces), positions, texts, floats, others)

    def _totals_row(self, values: list[Any]) -> str:
        self.next_row += 1
        cells = "".join(self._slow_cell(c, v, "total") for c, v in enumerate(values))
        return f'<row r="{self.next_row}">{cells}</row>'

    def _slow_cell(self, c: int, v: Any, role: str) -> str:
        """One cell in the general way: marks, dates, decimals, bools, values of another kind than the column."""
        kind = self.columns[c].kind
        if type(v) is Marked:
            role = v.flag if role == "body" else role
            v = v.value
            if v is None:
                return f'<c s="{style_id(kind, role)}"/>'
        if v is None:
            return "<c/>"
        if isinstance(v, bool):
            return f'<c s="{style_id(kind, role)}" t="b"><v>{int(v)}</v></c>'
        if isinstance(v, dt.date):
            return f'<c s="{style_id("date", role)}"><v>{_serial(v)!r}</v></c>'
        if kind != "text" and isinstance(v, int | float | Decimal):
            number = float(v) if isinstance(v, Decimal) else v
            if isinstance(number, float) and not math.isfinite(number):
                return "<c/>"
            return f'<c s="{style_id(kind, role)}"><v>{number!r}</v></c>'
        text = escape_text(v if isinstance(v, str) else str(v))
        return f'<c s="{style_id(kind, role)}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'

    # ---- tail -------------------------------------------------------------------------------------------------

    def tail(self) -> str:
        parts = ["</sheetData>"]
        if self.filter_ref:
            parts.append(f'<autoFilter ref="{self.filter_ref}"/>')
        top = self.header_top + 1
        merges = [
            f'<mergeCell ref="{self.letters[c0]}{top + r0}:{self.letters[c1]}{top + r1}"/>'
            for r0, c0, r1, c1 in self.layout.merges
        ]
        if merges:
            parts.append(f'<mergeCells count="{len(merges)}">{"".join(merges)}</mergeCells>')
        parts.append('<pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>')
        parts.append("</worksheet>")
        return "".join(parts)


class _Plan:
    """How to write rows of one shape: the format string and which values need escaping or rendering."""

    __slots__ = ("columns", "floats", "format", "join_texts", "others", "pick", "sum_floats", "texts")

    def __init__(self, fmt: str, positions: list[int], texts: list[int], floats: list[int], others: list[int]):
        self.format = fmt
        self.columns = positions  # the column of each placeholder
        self.texts = texts
        self.floats = floats
        self.others = others
        self.pick = _getter(positions)
        pick_texts = _getter(texts)
        pick_floats = _getter(floats)
        # one regex search per row over all its texts, one finiteness test over the sum of its floats
        self.join_texts: Callable[[list[Any]], str] = lambda values: "".join(pick_texts(values))
        self.sum_floats: Callable[[list[Any]], float] = lambda values: sum(pick_floats(values))


def _getter(positions: list[int]) -> Callable[[Sequence[Any]], list[Any]]:
    """A function returning the values at ``positions`` as a new list (itemgetter, minus its special cases)."""
    if not positions:
        return lambda row: []
    if len(positions) == 1:
        only = positions[0]
        return lambda row: [row[only]]
    getter = operator.itemgetter(*positions)
    return lambda row: list(getter(row))


def _serial(value: dt.date) -> float | int:
    """Excel's serial day number (1900 date system); datetimes keep their time of day."""
    if isinstance(value, dt.datetime):
        days = (value.replace(tzinfo=None) - dt.datetime(1899, 12, 30)).total_seconds() / 86400
        return round(days, 10)
    return (value - _EPOCH).days
