"""Ozon stock history and archived products (issue 14 §1): a point only where a value the point stores moved,
unknown in-transit figures stay unknown when a row is zeroed, and a product Ozon no longer lists is archived
with its stock zeroed and its open alerts resolved ``archived`` — through the sandbox over HTTP, the worker
and real PostgreSQL."""

from __future__ import annotations

import uuid

from sqlalchemy import select, text

from app.db.engine import create_engine, create_sessionmaker, session_scope
from app.db.models import Product, StockHistory, StockLevel
from app.db.models.notifications import Alert
from app.domain.sync.model import CatalogItem, Snapshot, StockRow, VariantItem, WarehouseItem
from tests.helpers import register
from tests.integration.sync.test_sync import _clear_cooldown
from tests.integration.sync.test_sync_rules import scope, write  # noqa: F401 (the fixture)
from tests.sync_support import connect, make_seller, sync_now


def _ozon(rows: list[StockRow], covered_fbs: tuple[str, ...] = ("9001",)) -> Snapshot:
    return Snapshot(
        catalog=[CatalogItem("500", "OF-1", "Mug", variants=[VariantItem("5001")])],
        warehouses=[WarehouseItem("300", "Ozon warehouse 300", "fbo"), WarehouseItem("9001", "Мой склад", "fbs")],
        stock=rows,
        covered_fbo=True,
        covered_fbs=set(covered_fbs),
    )


async def _points(sm, tid) -> list[tuple[int, int | None, int | None]]:
    async with session_scope(sm, tid) as s:
        rows = await s.execute(
            select(StockHistory.quantity, StockHistory.in_way_to_client, StockHistory.in_way_from_client).order_by(
                StockHistory.id
            )
        )
        return [tuple(r) for r in rows.all()]


async def test_a_change_of_reserved_units_only_writes_no_history_point(scope):  # noqa: F811
    """Ozon's ``reserved`` moves with every pending order; the point does not store it, so a change there
    alone must not add a point repeating the last quantity (the row itself is updated)."""
    sm, tid, cid = scope
    first = await write(sm, tid, cid, _ozon([StockRow("500", "5001", "300", 7, reserved=2)]))
    moved = await write(sm, tid, cid, _ozon([StockRow("500", "5001", "300", 7, reserved=3)]))
    assert first.history_points == 1
    assert moved.changes == 1 and moved.history_points == 0
    async with session_scope(sm, tid) as s:
        assert (await s.execute(select(StockLevel.reserved))).scalar_one() == 3
    again = await write(sm, tid, cid, _ozon([StockRow("500", "5001", "300", 6, reserved=3)]))
    assert again.history_points == 1
    assert await _points(sm, tid) == [(7, None, None), (6, None, None)]


async def test_a_zeroed_row_keeps_unknown_in_transit_unknown(scope):  # noqa: F811
    """An FBS row Ozon no longer reports is 0 now (rule 3), but its in-transit figures were never known:
    its point stores null there, not 0 (rule 5). A row that held only reserved units gets no point."""
    sm, tid, cid = scope
    rows = [StockRow("500", "5001", "9001", 4, reserved=1)]
    await write(sm, tid, cid, _ozon(rows))
    zeroed = await write(sm, tid, cid, _ozon([]))
    assert zeroed.zeroed == 1 and zeroed.history_points == 1
    assert await _points(sm, tid) == [(4, None, None), (0, None, None)]
    # Only reserved units left, then absent: the row is zeroed but the point would repeat 0.
    await write(sm, tid, cid, _ozon([StockRow("500", "5001", "9001", 0, reserved=2)]))
    gone = await write(sm, tid, cid, _ozon([]))
    assert gone.zeroed == 1 and gone.history_points == 0
    assert len(await _points(sm, tid)) == 2


async def _db(settings):
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    return engine, create_sessionmaker(engine)


async def test_an_ozon_resync_writes_points_only_where_a_stored_value_moved(client, settings, marketplace_sandbox):
    """Orders placed and shipped between two syncs move Ozon's reserved units; only cells whose available
    quantity moved get a point, and none repeats the previous point of its cell."""
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "ozon", products=40, warehouses=2, seed=23)
    try:
        conn = await connect(client, owner["headers"], seller)
        first = await sync_now(client, settings, owner["headers"], conn["id"])
        assert first["status"] == "succeeded", first
        seller.advance(30)
        await _clear_cooldown(settings, conn["id"], owner["tenant"]["id"])
        second = await sync_now(client, settings, owner["headers"], conn["id"])
        assert second["status"] == "succeeded", second
        engine, sm = await _db(settings)
        try:
            async with session_scope(sm, uuid.UUID(owner["tenant"]["id"])) as s:
                repeats = (
                    await s.execute(
                        text(
                            """SELECT count(*) FROM stock_history h JOIN stock_history p
                                 ON p.variant_id = h.variant_id AND p.warehouse_id = h.warehouse_id
                                AND p.sync_run_id = :first
                               WHERE h.sync_run_id = :second
                                 AND (p.quantity, p.in_way_to_client, p.in_way_from_client)
                                     IS NOT DISTINCT FROM (h.quantity, h.in_way_to_client, h.in_way_from_client)"""
                        ),
                        {"first": first["id"], "second": second["id"]},
                    )
                ).scalar_one()
                points = (
                    await s.execute(select(StockHistory.id).where(StockHistory.sync_run_id == uuid.UUID(second["id"])))
                ).all()
        finally:
            await engine.dispose()
        # The test can fail: the rows updated outnumber the points (reserved-only changes happened).
        assert second["counts"]["changes"] > len(points) > 0
        assert repeats == 0
        assert second["counts"]["history_points"] == len(points)
    finally:
        seller.delete()


async def test_a_product_ozon_no_longer_lists_is_archived_with_its_stock_and_alerts(
    client, settings, marketplace_sandbox
):
    """Two products leave Ozon's catalogue: one with stock (its rows must not stay stale), one out of stock
    with an open alert (resolved ``archived``, not left open or escalated); a third, also out, keeps its
    alert."""
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "ozon", products=20, warehouses=2, seed=29)
    try:
        truth = seller.truth()
        ids = list(dict.fromkeys(r["product_id"] for r in truth))
        stocked, out, kept = ids[0], ids[1], ids[2]
        seller.set_stocks([{**r, "quantity": 5} for r in truth if r["product_id"] == stocked])
        seller.set_stocks([{**r, "quantity": 0} for r in truth if r["product_id"] in (out, kept)])
        conn = await connect(client, owner["headers"], seller)
        first = await sync_now(client, settings, owner["headers"], conn["id"])
        assert first["status"] == "succeeded", first
        tid = uuid.UUID(owner["tenant"]["id"])
        engine, sm = await _db(settings)
        try:
            async with session_scope(sm, tid) as s:
                before = dict(
                    (
                        await s.execute(
                            select(Product.external_id, Alert.status).join(Product, Product.id == Alert.product_id)
                        )
                    ).all()
                )
            assert before.get(out) == "open" and before.get(kept) == "open" and stocked not in before

            with seller._http() as h:
                for pid in (stocked, out):
                    r = h.post(f"/control/sellers/{seller.id}/products/{pid}/archive")
                    assert r.status_code == 200, r.text
            await _clear_cooldown(settings, conn["id"], owner["tenant"]["id"])
            run = await sync_now(client, settings, owner["headers"], conn["id"])
            assert run["status"] == "succeeded", run
            assert run["counts"]["archived"] == 2

            async with session_scope(sm, tid) as s:
                archived = {p.external_id: p.archived_at for p in (await s.execute(select(Product))).scalars().all()}
                stock = (
                    (
                        await s.execute(
                            select(StockLevel.quantity)
                            .join(Product, Product.id == StockLevel.product_id)
                            .where(Product.external_id == stocked)
                        )
                    )
                    .scalars()
                    .all()
                )
                alerts = {
                    pid: (status, resolution, run_id)
                    for pid, status, resolution, run_id in (
                        await s.execute(
                            select(Product.external_id, Alert.status, Alert.resolution, Alert.resolved_run_id).join(
                                Product, Product.id == Alert.product_id
                            )
                        )
                    ).all()
                }
        finally:
            await engine.dispose()
        assert {pid for pid, at in archived.items() if at is not None} == {stocked, out}
        assert stock and set(stock) == {0}
        assert alerts[out] == ("resolved", "archived", uuid.UUID(run["id"]))
        assert alerts[kept][0] == "open"
        assert stocked not in alerts  # zeroed by the archive, it is no subject: no ``out`` alert opens
    finally:
        seller.delete()


async def test_deleting_a_connection_or_a_product_removes_its_stock_and_history(scope, settings):  # noqa: F811
    """The stock rows and history points of deleted variants and warehouses go with them (statement-level
    triggers since migration 0012, instead of per-row foreign keys) — nothing is left, not even rows the
    tenant's row-level security would hide."""
    import asyncpg
    from sqlalchemy import delete

    from app.db.models import Connection

    sm, tid, cid = scope
    await write(sm, tid, cid, _ozon([StockRow("500", "5001", "300", 7), StockRow("500", "5001", "9001", 2)]))
    snap = _ozon([StockRow("600", "6001", "300", 1)])
    snap.catalog = [CatalogItem("600", "OF-2", "Cup", variants=[VariantItem("6001")])]
    await write(sm, tid, cid, snap)
    owner = await asyncpg.connect(settings.migration_database_url)
    try:

        async def left() -> tuple[int, int]:
            levels = await owner.fetchval("SELECT count(*) FROM stock_levels WHERE connection_id = $1", cid)
            points = await owner.fetchval("SELECT count(*) FROM stock_history WHERE tenant_id = $1", tid)
            return int(levels), int(points)

        assert await left() == (3, 5)  # the second snapshot zeroed product 500's two rows: two more points
        async with session_scope(sm, tid) as s:  # one product, as the application role
            await s.execute(delete(Product).where(Product.external_id == "600"))
        assert await left() == (2, 4)
        async with session_scope(sm, tid) as s:  # the connection: products, variants, warehouses cascade
            await s.execute(delete(Connection).where(Connection.id == cid))
        assert await left() == (0, 0)
    finally:
        await owner.close()
