"""``OrderLines``: a sync's order lines held compressed a chunk at a time between the fetch and the write."""

from __future__ import annotations

import tracemalloc
import zlib
from datetime import UTC, date, datetime, timedelta, timezone

import msgspec

from app.domain.sync import order_lines
from app.domain.sync.model import OrderItem, OrderLines, Snapshot, WarehouseItem
from app.domain.sync.normalize import resolve_order_warehouses
from app.domain.sync.pipeline import keep_only, snapshot_products
from app.integrations.wildberries.schemas import OrderLine

MSK = timezone(timedelta(hours=3))


def _item(
    n: int, product: str = "100", warehouse: str | None = "Коледино", kind: str | None = "fbo", **kw
) -> OrderItem:
    at = datetime(2026, 11, 1, 12, 0, tzinfo=UTC) + timedelta(minutes=n)
    fields = {
        "external_id": f"srid-{n}",
        "basket_id": f"g{n // 3}",
        "product_external_id": product,
        "variant_external_id": None,
        "barcode": f"20000{n}",
        "warehouse_name": warehouse,
        "warehouse_kind": kind,
        "ordered_at": at,
        "order_date": at.astimezone(MSK).date(),
        "is_cancel": False,
        "cancelled_at": None,
        "raw": {"srid": f"srid-{n}", "nmId": int(product), "warehouseName": warehouse, "totalPrice": 10.5 + n},
    }
    fields.update(kw)
    return OrderItem(**fields)  # type: ignore[arg-type]


def test_empty_has_no_lines_and_reads_nothing():
    lines = OrderLines()
    assert len(lines) == 0 and not lines
    assert list(lines) == [] and list(lines.copy_rows()) == []
    assert lines.product_ids() == set() and lines.unplaced_warehouses() == {}
    lines.seal()
    assert len(lines) == 0 and lines.chunk_count == 0


def test_lines_come_back_as_they_went_in():
    cancelled = datetime(2026, 11, 2, 9, 30, tzinfo=MSK)
    items = [_item(1), _item(2, is_cancel=True, cancelled_at=cancelled), _item(3, warehouse=None, kind=None)]
    lines = OrderLines(items)
    lines.seal()
    back = list(lines)
    assert back == items  # every field, raw decoded back to the same dict; instants equal whatever the offset
    assert back[1].cancelled_at == cancelled and back[1].ordered_at.tzinfo is not None
    rows = list(lines.copy_rows())
    assert rows[0][0] == "srid-1" and msgspec.json.decode(rows[0][-1]) == items[0].raw
    assert rows[1][9] is True and rows[1][10] == cancelled


def test_a_struct_raw_is_kept_as_its_json():
    """A WB line's raw is its decoded struct: what the writer stores is its JSON, as ``to_builtins`` gives it."""
    line = OrderLine(
        date="2026-11-01T10:00:00", lastChangeDate="2026-11-01T10:05:00", nmId=100, srid="abc", isCancel=True
    )
    lines = OrderLines([_item(1, raw=line)])
    (row,) = list(lines.copy_rows())
    assert msgspec.json.decode(row[-1]) == msgspec.to_builtins(line)
    (item,) = list(lines)
    assert item.raw == msgspec.to_builtins(line)


def test_many_chunks_are_read_in_order_and_are_smaller_than_the_lines(monkeypatch):
    monkeypatch.setattr(order_lines, "CHUNK_LINES", 100)
    items = [_item(n, product=str(100 + n % 7)) for n in range(1050)]
    lines = OrderLines(items)
    assert lines.chunk_count == 11  # ten full chunks and the pending 50, read before sealing too
    assert [i.external_id for i in lines] == [i.external_id for i in items]
    lines.seal()
    assert lines.chunk_count == 11 and len(lines) == 1050
    assert list(lines) == items
    assert lines.product_ids() == {str(100 + k) for k in range(7)}
    stored = sum(len(c) for c in lines.state().chunks)
    plain = sum(len(msgspec.json.encode(i)) for i in items)
    assert stored * 3 < plain  # repetitive lines compress


def test_a_later_copy_of_a_line_supersedes_the_earlier_one(monkeypatch):
    """WB repeats the boundary lines of two pages; the later copy carries the newer state (a cancellation)."""
    monkeypatch.setattr(order_lines, "CHUNK_LINES", 2)
    lines = OrderLines([_item(1), _item(2), _item(3)])
    lines.append(_item(2, is_cancel=True))  # the earlier copy is in a compressed chunk already
    lines.append(_item(3, is_cancel=True))
    assert len(lines) == 3
    assert [(i.external_id, i.is_cancel) for i in lines] == [("srid-1", False), ("srid-2", True), ("srid-3", True)]
    assert [r[0] for r in lines.copy_rows()] == ["srid-1", "srid-2", "srid-3"]  # each line id once for the COPY
    # After a stash (no line ids kept) a repeated line still supersedes the one stored.
    again = OrderLines.from_state(lines.state())
    again.append(_item(1, is_cancel=True))
    assert len(again) == 3 and sorted((i.external_id, i.is_cancel) for i in again) == [
        ("srid-1", True),
        ("srid-2", True),
        ("srid-3", True),
    ]


def test_filter_keeps_the_lines_of_kept_products(monkeypatch):
    monkeypatch.setattr(order_lines, "CHUNK_LINES", 3)
    items = [_item(n, product=str(100 + n % 4)) for n in range(20)]
    lines = OrderLines(items)
    lines.append(_item(4, product="100", is_cancel=True))  # supersedes line 4 (product 100)
    lines.warehouse_ids["Коледино"] = "507"
    kept = lines.only(frozenset({"100", "102"}))
    assert len(kept) == 10 and kept.product_ids() == {"100", "102"}
    assert {i.external_id for i in kept} == {i.external_id for i in items if i.product_external_id in {"100", "102"}}
    assert next(i for i in kept if i.external_id == "srid-4").is_cancel is True
    assert {i.warehouse_external_id for i in kept} == {"507"}  # what was resolved stays resolved
    assert len(lines) == 20  # the original is untouched
    assert len(lines.only(frozenset())) == 0


def test_warehouse_names_map_to_ids_once_per_name():
    items = [
        _item(1, warehouse="Коледино", kind=None),  # the first line of a name gives no kind …
        _item(2, warehouse="Коледино", kind="fbo"),  # … a later one does
        _item(3, warehouse="Мой склад", kind="fbs"),
        _item(4, warehouse="Ozon 1", kind="fbo", warehouse_external_id="77"),  # names its id: kept as it is
        _item(5, warehouse="Неизвестный", kind=None),  # never a kind: not added, left unresolved
        _item(6, warehouse=None, kind="fbs"),
    ]
    lines = OrderLines(items)
    assert lines.unplaced_warehouses() == {"Коледино": "fbo", "Мой склад": "fbs", "Неизвестный": None}
    snapshot = Snapshot(warehouses=[WarehouseItem("12", "Мой склад", "fbs")], orders=lines)
    resolve_order_warehouses(snapshot, {"Старый": "9"})
    assert [(w.external_id, w.name, w.kind) for w in snapshot.warehouses] == [
        ("12", "Мой склад", "fbs"),
        ("name:Коледино", "Коледино", "fbo"),
    ]
    assert [i.warehouse_external_id for i in lines] == ["name:Коледино", "name:Коледино", "12", "77", None, None]
    assert [r[6] for r in lines.copy_rows()] == ["name:Коледино", "name:Коледино", "12", "77", None, None]


def test_the_plan_limit_and_the_product_set_read_the_order_lines():
    snapshot = Snapshot(orders=OrderLines([_item(1, product="100"), _item(2, product="200")]))
    assert snapshot_products(snapshot) == {"100", "200"}
    keep_only(snapshot, frozenset({"200"}))
    assert snapshot.orders is not None and [i.external_id for i in snapshot.orders] == ["srid-2"]


def test_the_state_round_trips_through_msgpack(monkeypatch):
    monkeypatch.setattr(order_lines, "CHUNK_LINES", 4)
    lines = OrderLines([_item(n) for n in range(10)] + [_item(3, is_cancel=True)])
    lines.warehouse_ids["Коледино"] = "507"
    blob = msgspec.msgpack.encode(lines.state())
    back = OrderLines.from_state(msgspec.msgpack.decode(blob, type=order_lines.OrderLinesState))
    assert len(back) == len(lines) == 10
    assert list(back) == list(lines)
    assert back.unplaced_warehouses() == {"Коледино": "fbo"}
    assert date(2026, 11, 1) <= min(i.order_date for i in back)


def _wb_item(n: int) -> OrderItem:
    """An order line as the WB fetch makes it: its raw is the decoded struct, with Cyrillic text in it."""
    line = OrderLine(
        date="2026-11-01T10:00:00",
        lastChangeDate="2026-11-01T10:05:00",
        nmId=100 + n % 50,
        srid=f"{n % 90 + 10}.rabcdef12{n:012x}.0.0",
        warehouseName="Коледино",
        warehouseType="Склад WB",
        countryName="Россия",
        oblastOkrugName="Центральный федеральный округ",
        regionName="Московская область",
        supplierArticle=f"ART-{100 + n % 50}",
        barcode=str(2_000_000_000_000 + n),
        category="Одежда",
        subject="Футболки",
        brand="Бренд",
        techSize="42",
        totalPrice=1234.0,
        gNumber=f"{n:020d}",
        sticker=str(30_000_000_000 + n),
    )
    return _item(n, product=str(line.nmId), raw=line, external_id=line.srid, barcode=line.barcode)


def test_a_small_syncs_lines_are_held_packed_not_as_objects():
    """Fewer lines than a chunk are not compressed (CPU) but packed: what they hold is about their JSON's UTF-8
    size, not ~2× (a str of Cyrillic text is UCS-2) plus an object per field (issue 13, sixth stop)."""
    items = [_wb_item(n) for n in range(1_200)]
    utf8 = sum(len(msgspec.json.encode(i.raw)) for i in items)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        lines = OrderLines(items)
        lines.seal()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert lines.chunk_count == 1 and len(lines) == 1_200
    assert held < 1.3 * utf8, (held, utf8)  # ~1.13 packed (the columns beside the JSON); ~2.1 as objects
    rows = list(lines.copy_rows())
    assert [r[0] for r in rows] == [i.external_id for i in items]
    assert all(isinstance(r[-1], str) for r in rows)  # asyncpg's jsonb takes text
    assert [msgspec.json.decode(r[-1]) for r in rows] == [msgspec.to_builtins(i.raw) for i in items]


def test_a_stash_written_with_the_raw_json_as_text_still_reads():
    """A waiting run's stash from before the raw JSON was held as bytes (it held a str) loads and writes."""
    item = _item(1)
    old = order_lines._Line(*[*msgspec.structs.astuple(order_lines._line(item))[:11], '{"srid":"srid-1"}', None])
    state = order_lines.OrderLinesState(
        [zlib.compress(order_lines._encode([old]), 1)], [1], [], {"Коледино": "fbo"}, {}
    )
    lines = OrderLines.from_state(state)
    (row,) = list(lines.copy_rows())
    assert row[0] == "srid-1" and row[-1] == '{"srid":"srid-1"}'
    assert [i.raw for i in lines] == [{"srid": "srid-1"}]
