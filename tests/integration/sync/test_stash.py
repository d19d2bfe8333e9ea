"""A waiting run's stash (real Redis): what the finished steps fetched comes back whole, order lines included."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec

from app.domain.sync import order_lines
from app.domain.sync.model import CatalogItem, OrderItem, OrderLines, Snapshot, StockRow, VariantItem, WarehouseItem
from app.domain.sync.records import Stage, StageLog
from app.domain.sync.stash import RunStash
from app.integrations.wildberries.schemas import OrderLine


def _line(n: int, cancelled: bool = False) -> OrderItem:
    at = datetime(2026, 11, 1, 7, tzinfo=UTC) + timedelta(minutes=n)
    raw = OrderLine(date="2026-11-01T10:00:00", lastChangeDate="2026-11-01T10:00:00", nmId=100 + n % 3, srid=f"s{n}")
    return OrderItem(
        f"s{n}", "g", str(100 + n % 3), None, None, "Коледино", "fbo", at, at.date(), cancelled, None, raw
    )  # fmt: skip


async def test_the_stash_round_trips_a_snapshot_with_its_order_lines(redis, monkeypatch):
    monkeypatch.setattr(order_lines, "CHUNK_LINES", 7)
    lines = OrderLines([_line(n) for n in range(50)])
    lines.append(_line(3, cancelled=True))  # supersedes the copy in the first chunk
    lines.seal()
    lines.warehouse_ids["Коледино"] = "name:Коледино"
    snapshot = Snapshot(
        catalog=[CatalogItem("100", "A", "T", variants=[VariantItem("1001", "M", "46", ["200"])])],
        warehouses=[WarehouseItem("7", "Склад", "fbs")],
        stock=[StockRow("100", "1001", "7", 3)],
        orders=lines,
        covered_fbs={"7"},
        orders_cursor="2026-11-01T10:00:00",
    )
    log = StageLog()
    with log.step("orders", Stage.FETCH) as record:
        record.counts = {"orders": len(lines)}
    run_id = uuid.uuid4()
    await RunStash(redis).save(run_id, snapshot, log, 60)
    stages = StageLog()
    back = await RunStash(redis).load(run_id, stages)
    assert back is not None and stages.records["orders"].counts == {"orders": 50}
    assert back.catalog == snapshot.catalog and back.stock == snapshot.stock and back.covered_fbs == {"7"}
    assert back.orders is not None and len(back.orders) == 50
    assert list(back.orders) == list(lines)  # every line, the later copy of s3, the resolved warehouse
    assert next(i for i in back.orders if i.external_id == "s3").is_cancel is True
    assert {i.warehouse_external_id for i in back.orders} == {"name:Коледино"}
    assert list(back.orders.copy_rows()) == list(lines.copy_rows())
    assert msgspec.json.decode(next(back.orders.copy_rows())[-1]) == msgspec.to_builtins(_line(0).raw)


async def test_a_snapshot_without_order_lines_round_trips_as_none(redis):
    run_id = uuid.uuid4()
    await RunStash(redis).save(run_id, Snapshot(stock=[StockRow("1", "2", "3", 4)]), StageLog(), 60)
    back = await RunStash(redis).load(run_id, StageLog())
    assert back is not None and back.orders is None and back.stock == [StockRow("1", "2", "3", 4)]


async def test_a_stash_of_an_older_shape_starts_afresh(redis):
    """A stash written before the order lines were compressed (a plain list) is not misread: fetch again."""
    run_id = uuid.uuid4()
    old = {"snapshot": {"orders": [{"external_id": "s1"}]}, "stages": {}, "calls": 0}
    await redis.set(f"sync:stash:{run_id}", msgspec.msgpack.encode(old))
    assert await RunStash(redis).load(run_id, StageLog()) is None
