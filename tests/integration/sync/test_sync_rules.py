"""Data-correctness rules at the writer (real PostgreSQL): full snapshots, covered sources, identities."""

from __future__ import annotations

from datetime import UTC, date, datetime

import msgspec
import pytest
from sqlalchemy import delete, select

from app.db.engine import create_engine, create_sessionmaker, session_scope, set_tenant
from app.db.models import Connection, Marketplace, StockHistory, StockLevel, SyncRun, Tenant, Warehouse
from app.domain.sync.model import CatalogItem, OrderItem, OrderLines, Snapshot, StockRow, VariantItem, WarehouseItem
from app.domain.sync.normalize import normalize, resolve_order_warehouses
from app.domain.sync.writer import SnapshotWriter, WriteCounts
from app.lib.ids import uuid7


@pytest.fixture
async def scope(settings):
    engine = create_engine(settings, pool_size=2, max_overflow=0)
    sm = create_sessionmaker(engine)
    tid, cid = uuid7(), uuid7()
    async with session_scope(sm) as s:
        await set_tenant(s, tid)
        s.add(Tenant(id=tid, name="Rules"))
        await s.flush()
        s.add(
            Connection(id=cid, tenant_id=tid, marketplace=Marketplace.WILDBERRIES, name="c", credentials_encrypted=b"x")
        )
    yield sm, tid, cid
    await engine.dispose()


def catalog() -> list[CatalogItem]:
    return [
        CatalogItem("100", "TS-1", "Shirt", variants=[VariantItem("1001", "M"), VariantItem("1002", "L")]),
        CatalogItem("200", "TS-1-XL", "Shirt XL", variants=[VariantItem("2001", "XL")]),
    ]


async def write(sm, tid, cid, snap: Snapshot) -> WriteCounts:
    normalize(snap)
    resolve_order_warehouses(snap, {})
    counts = WriteCounts()
    run_id = uuid7()
    async with session_scope(sm, tid) as s:
        s.add(SyncRun(id=run_id, tenant_id=tid, connection_id=cid, trigger="manual", counts={}, stages={}))
        await s.flush()
        w = SnapshotWriter(s, tid, cid, "wildberries")
        await w.write_catalog(snap.catalog)
        await w.ensure_stub_variants(snap.stock)
        await w.write_warehouses(snap)
        await w.write_stock(snap, run_id, datetime.now(UTC), counts)
        if snap.orders is not None:
            await w.write_orders(snap.orders, counts)
    return counts


async def levels(sm, tid) -> dict[tuple[str, str], int]:
    from app.db.models import Variant

    async with session_scope(sm, tid) as s:
        rows = (
            await s.execute(
                select(Variant.external_id, Warehouse.external_id, StockLevel.quantity)
                .join(Variant, Variant.id == StockLevel.variant_id)
                .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
            )
        ).all()
    return {(v, w): q for v, w, q in rows}


def base_snapshot(fbs_rows: list[StockRow], *, covered_fbo=True, covered_fbs=("77",)) -> Snapshot:
    return Snapshot(
        catalog=catalog(),
        warehouses=[WarehouseItem("-999999", "Склад WB", "fbo"), WarehouseItem("77", "Мой склад", "fbs")],
        stock=[StockRow("100", "1001", "-999999", 10, 2, 1), *fbs_rows],
        covered_fbo=covered_fbo,
        covered_fbs=set(covered_fbs),
    )


async def test_absent_now_is_zero_now_only_for_covered_sources(scope):
    sm, tid, cid = scope
    await write(sm, tid, cid, base_snapshot([StockRow("100", "1002", "77", 5), StockRow("200", "2001", "77", 3)]))
    assert await levels(sm, tid) == {("1001", "-999999"): 10, ("1002", "77"): 5, ("2001", "77"): 3}
    # Next sync: the FBS warehouse was read completely and no longer lists 2001 → 0 now (rule 3) ...
    counts = await write(sm, tid, cid, base_snapshot([StockRow("100", "1002", "77", 5)]))
    assert (await levels(sm, tid))[("2001", "77")] == 0
    assert counts.zeroed == 1 and counts.changes == 0
    # ... but a source that failed zeroes nothing: FBO not covered, its row keeps its last value.
    snap = base_snapshot([StockRow("100", "1002", "77", 5)], covered_fbo=False)
    snap.stock = [r for r in snap.stock if r.warehouse_external_id != "-999999"]
    counts = await write(sm, tid, cid, snap)
    assert (await levels(sm, tid))[("1001", "-999999")] == 10 and counts.zeroed == 0


async def test_pseudo_rows_never_become_warehouses_or_totals(scope):
    sm, tid, cid = scope
    snap = base_snapshot([StockRow("100", "1002", "77", 5)])
    snap.warehouses.append(WarehouseItem("name:В пути до получателей", "В пути до получателей", "fbo"))
    snap.warehouses.append(WarehouseItem("name:Всего находится на складах", " Всего находится на складах ", "fbo"))
    snap.stock.append(StockRow("100", "1001", "name:В пути до получателей", 99))
    snap.stock.append(StockRow("100", "1001", "name:Всего находится на складах", 15))
    await write(sm, tid, cid, snap)
    async with session_scope(sm, tid) as s:
        names = set((await s.execute(select(Warehouse.name))).scalars())
    assert names == {"Склад WB", "Мой склад"}
    assert sum((await levels(sm, tid)).values()) == 15  # 10 FBW + 5 FBS; 99 and 15 were not warehouses


async def test_identity_is_ids_not_names_or_vendor_codes(scope):
    """Rules 4 and 6: two warehouses with one name stay two; a vendor-code prefix merges nothing;
    an order's warehouse is found by its exact trimmed name, never fuzzily."""
    sm, tid, cid = scope
    snap = base_snapshot([StockRow("100", "1002", "77", 5)], covered_fbs=("77", "78"))
    snap.warehouses.append(WarehouseItem("78", "Мой склад", "fbs"))
    snap.stock.append(StockRow("200", "2001", "78", 4))
    snap.orders = OrderLines(
        [
            _order("s1", "100", "Мой склад ", "fbs"),  # trailing space: exact trimmed match → first of the name
            _order("s2", "100", "Коледино", "fbo"),  # not a stock warehouse: added by name, kind from the API
            _order("s3", "100", "коледино", "fbo"),  # a different name: not merged with the one above
        ]
    )
    await write(sm, tid, cid, snap)
    async with session_scope(sm, tid) as s:
        whs = {(w.external_id, w.name, w.kind.value) for w in (await s.execute(select(Warehouse))).scalars()}
    assert ("77", "Мой склад", "fbs") in whs and ("78", "Мой склад", "fbs") in whs
    assert ("name:Коледино", "Коледино", "fbo") in whs and ("name:коледино", "коледино", "fbo") in whs
    lv = await levels(sm, tid)
    assert lv[("1002", "77")] == 5 and lv[("2001", "78")] == 4  # TS-1 and TS-1-XL stay separate products


async def test_history_is_written_only_for_changes(scope):
    sm, tid, cid = scope
    snap = lambda q: base_snapshot([StockRow("100", "1002", "77", q)])  # noqa: E731
    first = await write(sm, tid, cid, snap(5))
    again = await write(sm, tid, cid, snap(5))
    changed = await write(sm, tid, cid, snap(4))
    assert first.history_points == 2 and again.history_points == 0 and changed.history_points == 1
    async with session_scope(sm, tid) as s:
        assert len((await s.execute(select(StockHistory))).scalars().all()) == 3


async def test_a_rerun_of_a_first_snapshot_whose_rows_were_removed_adds_no_point_and_does_not_fail(scope):
    """A connection's first snapshot inserts its points without ``ON CONFLICT``; should the same run write again
    at the same time after its stock rows were removed (a rerun of a committed run), the points it already
    wrote send it down the upsert path instead of into a unique violation."""
    sm, tid, cid = scope
    snap = base_snapshot([StockRow("100", "1002", "77", 5)])
    normalize(snap)
    run_id, at = uuid7(), datetime.now(UTC)

    async def write_run() -> WriteCounts:
        counts = WriteCounts()
        async with session_scope(sm, tid) as s:
            if await s.get(SyncRun, run_id) is None:
                s.add(SyncRun(id=run_id, tenant_id=tid, connection_id=cid, trigger="manual", counts={}, stages={}))
                await s.flush()
            w = SnapshotWriter(s, tid, cid, "wildberries")
            await w.write_catalog(snap.catalog)
            await w.write_warehouses(snap)
            await w.write_stock(snap, run_id, at, counts)
        return counts

    first = await write_run()
    assert (first.changes, first.history_points) == (2, 2)
    async with session_scope(sm, tid) as s:
        await s.execute(delete(StockLevel).where(StockLevel.connection_id == cid))
    again = await write_run()
    assert (again.changes, again.history_points) == (2, 0)
    async with session_scope(sm, tid) as s:
        points = (await s.execute(select(StockHistory).where(StockHistory.sync_run_id == run_id))).scalars().all()
    assert len(points) == 2
    assert await levels(sm, tid) == {("1001", "-999999"): 10, ("1002", "77"): 5}


def _order(srid: str, nm: str, wh: str, kind: str) -> OrderItem:
    now = datetime.now(UTC)
    return OrderItem(
        srid,
        "g1",
        nm,
        None,
        None,
        wh.strip(),
        kind,
        now,
        date.today(),
        False,
        None,
        {"srid": srid, "warehouseName": wh},
        None,
    )


def test_normalize_drops_pseudo_rows_and_duplicates():
    snap = Snapshot(
        warehouses=[WarehouseItem("1", "A", "fbs"), WarehouseItem("x", "Остальные", "fbo")],
        stock=[StockRow("p", "v", "1", 1), StockRow("p", "v", "1", 2), StockRow("p", "v", "x", 7)],
    )
    normalize(snap)
    assert [w.external_id for w in snap.warehouses] == ["1"]
    assert [(r.warehouse_external_id, r.quantity) for r in snap.stock] == [("1", 2)]


async def test_order_lines_are_stored_raw_and_a_cancellation_updates_the_line(scope, monkeypatch):
    """Order lines go to the writer compressed a chunk at a time: each line is stored once, its raw JSON as the
    marketplace's struct encodes it, its warehouse and variant resolved; writing the same lines again writes
    nothing, and a cancelled copy updates the stored line."""
    from app.db.models import OrderLine as StoredLine
    from app.domain.sync import order_lines
    from app.integrations.wildberries.schemas import OrderLine

    monkeypatch.setattr(order_lines, "CHUNK_LINES", 3)  # many chunks, the repeated line in an earlier one
    sm, tid, cid = scope

    def wb(n: int, cancelled: bool = False) -> OrderItem:
        line = OrderLine(
            date=f"2026-11-01T10:0{n}:00",
            lastChangeDate=f"2026-11-0{2 if cancelled else 1}T11:00:00",
            nmId=100,
            srid=f"srid-{n}",
            warehouseName="Мой склад",
            warehouseType="Склад продавца",
            barcode="2000000000017",
            techSize="L",
            totalPrice=1500.5,
            isCancel=cancelled,
            cancelDate="2026-11-02T11:00:00" if cancelled else "0001-01-01T00:00:00",
            gNumber="basket-1",
        )
        at = datetime(2026, 11, 1, 7, n, tzinfo=UTC)
        return OrderItem(
            line.srid, line.gNumber, "100", None, line.barcode, "Мой склад", "fbs", at, at.date(), cancelled,
            datetime(2026, 11, 2, 8, tzinfo=UTC) if cancelled else None, line,
        )  # fmt: skip

    def snap(lines: list[OrderItem]) -> Snapshot:
        s = base_snapshot([StockRow("100", "1002", "77", 5)])
        s.orders = OrderLines(lines)
        s.orders.seal()
        return s

    lines = [wb(n) for n in range(1, 8)]
    first = await write(sm, tid, cid, snap([*lines, wb(2)]))  # srid-2 twice (a page boundary): stored once
    assert (first.orders, first.orders_written) == (7, 7)
    async with session_scope(sm, tid) as s:
        stored = {o.external_id: o for o in (await s.execute(select(StoredLine))).scalars()}
        wh = {w.external_id: w.id for w in (await s.execute(select(Warehouse))).scalars()}
    assert set(stored) == {f"srid-{n}" for n in range(1, 8)}
    assert stored["srid-3"].raw == msgspec.to_builtins(lines[2].raw)  # the struct's JSON, every field
    assert stored["srid-3"].warehouse_id == wh["77"] and stored["srid-3"].variant_id is not None  # name, size
    again = await write(sm, tid, cid, snap(lines))
    assert (again.orders, again.orders_written) == (7, 0)
    cancelled = await write(sm, tid, cid, snap([*lines[:4], wb(5, cancelled=True), *lines[5:]]))
    assert (cancelled.orders, cancelled.orders_written) == (7, 1)
    async with session_scope(sm, tid) as s:
        five = (await s.execute(select(StoredLine).where(StoredLine.external_id == "srid-5"))).scalar_one()
    assert five.is_cancel is True and five.raw["isCancel"] is True and five.cancelled_at is not None


async def test_stock_of_a_variant_the_catalogue_has_not_returned_is_kept_under_a_stub(scope):
    """Only variants not stored yet get a stub (product and variant by marketplace id); a stored product keeps
    its details, and a second write adds nothing."""
    from app.db.models import Product, Variant

    sm, tid, cid = scope
    snap = base_snapshot([StockRow("100", "1002", "77", 5), StockRow("100", "1009", "77", 2)])
    snap.stock += [StockRow("300", "3001", "77", 4), StockRow("300", "3001", "-999999", 1)]  # one new variant, twice
    await write(sm, tid, cid, snap)
    await write(sm, tid, cid, base_snapshot([StockRow("300", "3001", "77", 4), StockRow("300", "3002", "77", 1)]))
    async with session_scope(sm, tid) as s:
        products = {p.external_id: p for p in (await s.execute(select(Product))).scalars()}
        variants = sorted((v.external_id, v.product_id) for v in (await s.execute(select(Variant))).scalars())
    assert set(products) == {"100", "200", "300"} and products["100"].title == "Shirt"
    assert products["300"].title is None
    assert [v for v, _ in variants] == ["1001", "1002", "1009", "2001", "3001", "3002"]
    by_id = dict(variants)
    assert by_id["1009"] == products["100"].id and by_id["3001"] == by_id["3002"] == products["300"].id
    lv = await levels(sm, tid)
    assert lv[("3001", "77")] == 4 and lv[("3002", "77")] == 1
    assert lv[("1009", "77")] == 0  # the second snapshot (FBS 77 read whole) no longer has it: zero now


async def test_the_unknown_variant_check_compares_each_id_once_against_a_fresh_catalogue(scope):
    """The stub check right after a first catalogue write (its 1 000 variants have no statistics yet) is a set
    operation over the ids, not a join the planner may make a nested loop comparing every id with every variant
    (quadratic; 525 825 comparisons for 1 026 ids in a fleet run). Read from its EXPLAIN ANALYZE in the
    writer's transaction."""
    from app.domain.sync.writer._copy import raw_connection
    from app.domain.sync.writer.catalogue import UNKNOWN_VARIANTS
    from tests.helpers import explained_plan, join_filter_comparisons

    sm, tid, cid = scope
    items = [
        CatalogItem(f"{p}", f"V-{p}", "T", variants=[VariantItem(f"{p}-{v}", str(v)) for v in range(2)])
        for p in range(500)
    ]
    ids = [*sorted(f"{p}-{v}" for p in range(500) for v in range(2)), "999-0"]
    async with session_scope(sm, tid) as s:
        await SnapshotWriter(s, tid, cid, "wildberries").write_catalog(items)
        raw = await raw_connection(s)
        # The planner's choice in a fleet (a generic plan, the fresh variants estimated at a few rows: a nested
        # loop), forced here where this database's statistics would pick a hash: the check must stay linear
        # whichever join the planner prefers.
        await raw.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
        [row] = await raw.fetch("EXPLAIN (ANALYZE, FORMAT JSON) " + UNKNOWN_VARIANTS, cid, ids)
        assert [r["v"] for r in await raw.fetch(UNKNOWN_VARIANTS, cid, ids)] == ["999-0"]

    _, nodes = explained_plan(row[0])
    compared = join_filter_comparisons(nodes)
    assert compared <= len(ids), f"{compared} comparisons for {len(ids)} ids"
