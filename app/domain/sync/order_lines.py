"""Order lines between the fetch and the write stage, held compressed a chunk at a time.

A first sync of a large seller reads 150 000 order lines of 30 days; as decoded structs they cost ~330 MB
between the fetch and the write. ``OrderLines`` keeps them as chunks of ``CHUNK_LINES`` lines, each encoded
with msgpack (the writer's columns, the line's raw JSON as UTF-8 bytes) and zlib-compressed — order lines are
very repetitive, so a chunk is ~10× smaller than its lines — and decodes one chunk at a time when it is read.
What a sync holds is then bounded by a chunk (and the page being decoded), not by the seller.

Fewer lines than a chunk (most sellers: a few thousand a month) are not compressed — that cost a fleet of
small sellers ~20 % more worker CPU — but packed: msgpack blocks of ``BLOCK_LINES`` lines, ~0.8 KB a line
instead of ~1.9 KB as objects (the raw JSON as a ``str`` is UCS-2 for Cyrillic text, twice its UTF-8 size,
and each line's strings, dates and struct are objects of their own). With ``max_jobs`` 20 a worker holds up
to 20 syncs' lines at once: this is most of what a small sync holds (issue 13, sixth stop).

The container is append-only while the orders step runs; a line whose id comes again (WB repeats the
lines at a page boundary, a later copy carries the newer state) supersedes the earlier one, as a dict by
line id would. The steps after the fetch never rewrite a chunk: the warehouse a line names is resolved once
per name (``warehouse_ids``, applied as lines are read), and the plan's product limit builds a new container
(``only``). A waiting run's stash stores the chunks as they are (``state`` / ``from_state``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import msgspec


@dataclass(slots=True)
class OrderItem:
    external_id: str  # WB srid: one order line (never gNumber, which is a basket)
    basket_id: str | None
    product_external_id: str
    variant_external_id: str | None
    barcode: str | None
    warehouse_name: str | None
    warehouse_kind: str | None  # from the API's own type field
    ordered_at: datetime
    order_date: date
    is_cancel: bool
    cancelled_at: datetime | None
    # The line as the marketplace sent it, stored as JSON by the writer: its JSON as received (UTF-8 bytes, kept as
    # they are: the Wildberries fetch), its JSON text, a dict or a decoded msgspec struct; ``OrderLines`` keeps the
    # JSON (UTF-8 bytes), and gives back a dict when read as ``OrderItem``.
    raw: Any
    warehouse_external_id: str | None = None  # resolved by exact trimmed name (orders carry no warehouse id)


CHUNK_LINES = 6_000
# Lines held as objects while appending before they are packed (plain msgpack, no compression): ~1 MB at most.
BLOCK_LINES = 500
# zlib level 1: most of the size gain of level 6 on these lines at a third of its time (150 000 lines).
LEVEL = 1


class _Line(msgspec.Struct, array_like=True):
    external_id: str
    basket_id: str | None
    product_external_id: str
    variant_external_id: str | None
    barcode: str | None
    warehouse_name: str | None
    warehouse_kind: str | None
    ordered_at: datetime
    order_date: date
    is_cancel: bool
    cancelled_at: datetime | None
    # The line's JSON as the writer stores it: UTF-8 bytes (half the memory of a str with Cyrillic text, which is
    # UCS-2); a str in a stash written before they were bytes.
    raw: Any  # bytes | str (msgspec takes no union of the two; msgpack keeps them apart: bin and str)
    warehouse_external_id: str | None


class _Head(msgspec.Struct, array_like=True):
    """A line's first fields only: msgpack skips the rest (the raw JSON) without building it."""

    external_id: str
    basket_id: str | None
    product_external_id: str


class OrderLinesState(msgspec.Struct):
    """What a stash keeps of an ``OrderLines``: its chunks as they are, and what was resolved about them."""

    chunks: list[bytes]
    sizes: list[int]
    superseded: list[int]
    names: dict[str, str | None]
    warehouse_ids: dict[str, str]


_encode = msgspec.msgpack.Encoder().encode
_lines = msgspec.msgpack.Decoder(list[_Line])
_heads = msgspec.msgpack.Decoder(list[_Head])
_raws = msgspec.msgpack.Decoder(list[msgspec.Raw])  # a block's lines as their msgpack, not decoded


def _text(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else raw.decode()


def _line(item: OrderItem) -> _Line:
    raw = item.raw
    if not isinstance(raw, bytes):  # bytes: a line's JSON as the marketplace sent it, kept as it is
        raw = raw.encode() if isinstance(raw, str) else msgspec.json.encode(raw)
    return _Line(
        item.external_id,
        item.basket_id,
        item.product_external_id,
        item.variant_external_id,
        item.barcode,
        item.warehouse_name,
        item.warehouse_kind,
        item.ordered_at,
        item.order_date,
        item.is_cancel,
        item.cancelled_at,
        raw,
        item.warehouse_external_id,
    )


class OrderLines:
    """A sync's order lines: append while fetching, then read (a chunk decoded at a time) any number of times."""

    def __init__(self, items: Iterable[OrderItem] = ()) -> None:
        self._chunks: list[bytes] = []
        self._sizes: list[int] = []  # lines in each chunk, superseded ones included
        self._blocks: list[bytes] = []  # lines not in a chunk yet, packed ``BLOCK_LINES`` at a time (no zlib)
        self._blocked = 0  # lines in ``_blocks``
        self._pending: list[_Line] = []  # the last lines, not packed yet
        self._superseded: set[int] = set()  # positions of lines a later copy replaced
        self._dirty = False  # lines were appended since ``_superseded`` was worked out
        self._count = 0  # positions handed out
        # Warehouse names of lines that carry no warehouse id → the kind of the first such line with a kind.
        self._names: dict[str, str | None] = {}
        # Warehouse name → marketplace id, resolved by the normalize stage; applied to lines as they are read.
        self.warehouse_ids: dict[str, str] = {}
        self.extend(items)

    # ---- writing ---------------------------------------------------------------------------------------------

    def append(self, item: OrderItem) -> None:
        self._count += 1
        self._dirty = True
        name = item.warehouse_name
        if not item.warehouse_external_id and name and self._names.get(name) is None:
            self._names[name] = item.warehouse_kind
        self._add(_line(item))

    def _add(self, line: _Line) -> None:
        self._pending.append(line)
        if self._blocked + len(self._pending) >= CHUNK_LINES:
            self._flush()
        elif len(self._pending) >= BLOCK_LINES:
            self._pack()

    def extend(self, items: Iterable[OrderItem]) -> None:
        for item in items:
            self.append(item)

    def seal(self) -> None:
        """No more lines will come (for now): work out which copies are superseded. Lines that fit in one
        chunk stay packed, not compressed — most sellers' (a few thousand a month), who then never pay for
        compressing and decompressing them (~20 % of a small first sync's worker CPU, ``bench/fleet.py``);
        past one chunk, the last one is compressed like the others (a large seller's memory is what the
        chunks are for)."""
        if self._chunks:
            self._flush()
        else:
            self._pack()
        self._resolve()

    def _pack(self) -> None:
        if self._pending:
            # msgspec's output keeps its growth slack (~30 % here): the block is held as an exact copy
            self._blocks.append(bytes(memoryview(_encode(self._pending))))
            self._blocked += len(self._pending)
            self._pending = []

    def _flush(self) -> None:
        """Everything not in a chunk yet becomes one: the blocks' lines re-listed as they are packed."""
        self._pack()
        if self._blocks:
            packed = [line for block in self._blocks for line in _raws.decode(block)]
            self._chunks.append(zlib.compress(_encode(packed), LEVEL))
            self._sizes.append(self._blocked)
            self._blocks, self._blocked = [], 0

    def _resolve(self) -> None:
        """Which positions a later copy of their line superseded: one pass over the line ids, after the fetch
        (a line-id index held while the pages come would cost ~25 MB per 100 000 lines beside each page)."""
        if not self._dirty:
            return
        latest: dict[str, int] = {}
        superseded: set[int] = set()
        for position, head in enumerate(self._heads_with_superseded()):
            earlier = latest.get(head.external_id)
            if earlier is not None:
                superseded.add(earlier)
            latest[head.external_id] = position
        self._superseded = superseded
        self._dirty = False

    # ---- reading ---------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Distinct lines (a superseded copy does not count)."""
        self._resolve()
        return self._count - len(self._superseded)

    def _decoded(self) -> Iterator[list[_Line]]:
        for chunk in self._chunks:
            yield _lines.decode(zlib.decompress(chunk))
        for block in self._blocks:
            yield _lines.decode(block)
        if self._pending:
            yield list(self._pending)

    def _heads_with_superseded(self) -> Iterator[_Head]:
        for chunk in self._chunks:
            yield from _heads.decode(zlib.decompress(chunk))
        for block in self._blocks:
            yield from _heads.decode(block)
        for line in self._pending:
            yield _Head(line.external_id, line.basket_id, line.product_external_id)

    def _current(self) -> Iterator[_Line]:
        """Every current line (a superseded copy left out), as it was appended."""
        self._resolve()
        position = 0
        superseded = self._superseded
        for lines in self._decoded():
            for line in lines:
                if position not in superseded:
                    yield line
                position += 1

    def _rows(self) -> Iterator[tuple[_Line, str | None]]:
        """Every current line with its warehouse id: its own, else the one resolved for the name it gives."""
        ids = self.warehouse_ids
        for line in self._current():
            warehouse = line.warehouse_external_id
            if not warehouse and line.warehouse_name:
                warehouse = ids.get(line.warehouse_name, warehouse)
            yield line, warehouse

    def __iter__(self) -> Iterator[OrderItem]:
        """The lines as ``OrderItem`` (``raw`` decoded back to a dict): for reading, not for the writer."""
        for line, warehouse in self._rows():
            yield OrderItem(
                line.external_id,
                line.basket_id,
                line.product_external_id,
                line.variant_external_id,
                line.barcode,
                line.warehouse_name,
                line.warehouse_kind,
                line.ordered_at,
                line.order_date,
                line.is_cancel,
                line.cancelled_at,
                msgspec.json.decode(line.raw),
                warehouse,
            )

    def copy_rows(self) -> Iterator[tuple[Any, ...]]:
        """The writer's COPY rows (``writer.orders`` columns), the raw JSON as text, one chunk (or block) decoded
        at a time."""
        for line, warehouse in self._rows():
            yield (
                line.external_id,
                line.basket_id,
                line.product_external_id,
                line.variant_external_id,
                line.barcode,
                line.warehouse_name,
                warehouse,
                line.ordered_at,
                line.order_date,
                line.is_cancel,
                line.cancelled_at,
                _text(line.raw),  # asyncpg's jsonb takes a str: made as the COPY sends the row, then dropped
            )

    def product_ids(self) -> set[str]:
        """The products (marketplace ids) the current lines are of."""
        self._resolve()
        out: set[str] = set()
        for position, head in enumerate(self._heads_with_superseded()):
            if position not in self._superseded:
                out.add(head.product_external_id)
        return out

    def unplaced_warehouses(self) -> dict[str, str | None]:
        """Warehouse names of lines that carry no warehouse id (in the order first seen) → the kind the first
        line of that name with a kind gave (None: none did)."""
        return dict(self._names)

    # ---- deriving --------------------------------------------------------------------------------------------

    def only(self, products: frozenset[str] | set[str]) -> OrderLines:
        """A new container of the lines whose product is in ``products`` (the plan's product limit)."""
        out = OrderLines()
        out.warehouse_ids = dict(self.warehouse_ids)
        for line in self._current():
            if line.product_external_id in products:
                out._append_line(line)
        out.seal()
        return out

    def _append_line(self, line: _Line) -> None:
        """A line of another container (already distinct there)."""
        name = line.warehouse_name
        if not line.warehouse_external_id and name and self._names.get(name) is None:
            self._names[name] = line.warehouse_kind
        self._count += 1
        self._add(line)

    # ---- a waiting run's stash -------------------------------------------------------------------------------

    def state(self) -> OrderLinesState:
        self._flush()
        self._resolve()
        return OrderLinesState(
            list(self._chunks),
            list(self._sizes),
            sorted(self._superseded),
            dict(self._names),
            dict(self.warehouse_ids),
        )

    @classmethod
    def from_state(cls, state: OrderLinesState) -> OrderLines:
        out = cls()
        out._chunks = list(state.chunks)
        out._sizes = list(state.sizes)
        out._superseded = set(state.superseded)
        out._count = sum(state.sizes)
        out._names = dict(state.names)
        out.warehouse_ids = dict(state.warehouse_ids)
        return out

    @property
    def chunk_count(self) -> int:
        """Compressed chunks, and one for the lines not in a chunk yet (packed or pending), if any."""
        return len(self._chunks) + (1 if self._blocks or self._pending else 0)
