"""What a table is, independent of its format: columns, header layout, highlighted cells and totals."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

Kind = Literal["text", "int", "decimal", "date"]
Flag = Literal["low", "out"]
Row = Sequence[Any]
Rows = Iterable[Row] | AsyncIterable[Row]
TotalRule = Literal["sum"] | Callable[[Sequence[float | None]], Any] | None

BATCH = 512
_NUMBERS = (int, float)


class Marked(NamedTuple):
    """A cell value to highlight: ``flag`` "low" (amber) or "out" (red)."""

    value: Any
    flag: Flag


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its header, value kind (number format), optional merged group header above it.

    ``total``: "sum" adds the column up in the totals row (None when no row has a number); a callable gets
    the list of sums (one per column, None for columns that are not summed) and returns the cell, so a
    derived figure (days of cover from total stock and total orders) comes from the same rows as its parts.
    """

    header: str
    kind: Kind = "text"
    group: str | None = None
    width: float | None = None
    total: TotalRule = None


@dataclass(slots=True)
class Sheet:
    """A table to write: columns, rows (plain values; ``Marked`` to highlight), layout options.

    ``title`` lines go above the header (the WB cabinet CSV starts with one). ``totals_label`` adds a totals
    row after the data with that label in the first column. ``freeze_columns`` keeps the first columns in
    view (the header rows are always frozen in XLSX).
    """

    name: str
    columns: Sequence[Column]
    rows: Rows
    title: Sequence[str] = ()
    freeze_columns: int = 0
    autofilter: bool = True
    totals_label: str | None = None


@dataclass(frozen=True, slots=True)
class HeaderLayout:
    """Header rows (cells may be None under a merge) and merges as (row0, col0, row1, col1), 0-based."""

    rows: list[list[str | None]]
    merges: list[tuple[int, int, int, int]]


def header_layout(columns: Sequence[Column]) -> HeaderLayout:
    """One header row, or two when any column has a group: the group title merged across its block on
    the first row and the column headers under it; ungrouped headers span both rows."""
    if not any(c.group for c in columns):
        return HeaderLayout([[c.header for c in columns]], [])
    top: list[str | None] = []
    bottom: list[str | None] = []
    merges: list[tuple[int, int, int, int]] = []
    index = 0
    for group, members in itertools.groupby(columns, key=lambda c: c.group):
        block = list(members)
        start = index
        index += len(block)
        if group is None:
            for offset, column in enumerate(block):
                top.append(column.header)
                bottom.append(None)
                merges.append((0, start + offset, 1, start + offset))
            continue
        top.append(group)
        top.extend([None] * (len(block) - 1))
        bottom.extend(c.header for c in block)
        if len(block) > 1:
            merges.append((0, start, 0, index - 1))
    return HeaderLayout([top, bottom], merges)


def flat_headers(columns: Sequence[Column]) -> list[str]:
    """Single-row headers for formats without merged cells: "group: header" under a group."""
    return [f"{c.group}: {c.header}" if c.group else c.header for c in columns]


class Totals:
    """Adds up the summed columns as rows stream past; ``row()`` gives the totals row at the end."""

    __slots__ = ("_columns", "_label", "_sum_index", "sums")

    def __init__(self, columns: Sequence[Column], label: str | None) -> None:
        self._columns = columns
        self._label = label
        self._sum_index = [i for i, c in enumerate(columns) if c.total == "sum"]
        self.sums: list[float | None] = [None] * len(columns)

    def add(self, rows: Sequence[Row]) -> None:
        sums = self.sums
        for i in self._sum_index:
            values = [v.value if type(v) is Marked else v for v in [row[i] for row in rows]]
            numbers = [v for v in values if type(v) in _NUMBERS]
            if numbers:
                total = sums[i]
                sums[i] = sum(numbers) if total is None else total + sum(numbers)

    def row(self) -> list[Any]:
        out: list[Any] = []
        for i, column in enumerate(self._columns):
            if column.total == "sum":
                out.append(self.sums[i])
            elif callable(column.total):
                out.append(column.total(self.sums))
            else:
                out.append(None)
        if self._label is not None and out and out[0] is None:
            out[0] = self._label
        return out


async def batches(rows: Rows, width: int, size: int = BATCH) -> AsyncIterator[list[Row]]:
    """Rows in lists of ``size`` (from a sync or an async iterable), each checked for its width."""
    batch: list[Row] = []
    if isinstance(rows, AsyncIterable):
        async for row in rows:
            batch.append(row)
            if len(batch) >= size:
                _check_width(batch, width)
                yield batch
                batch = []
    else:
        iterator = iter(rows)
        while batch := list(itertools.islice(iterator, size)):
            _check_width(batch, width)
            yield batch
        return
    if batch:
        _check_width(batch, width)
        yield batch


def _check_width(batch: list[Row], width: int) -> None:
    for row in batch:
        if len(row) != width:
            raise ValueError(f"a row has {len(row)} values for {width} columns")
