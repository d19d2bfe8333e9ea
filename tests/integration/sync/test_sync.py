"""The sync engine over real HTTP against the sandbox: the data-correctness rules, idempotency, failures."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from app.db.engine import create_engine, create_sessionmaker, session_scope
from app.db.models import StockHistory
from tests.helpers import register
from tests.sync_support import connect, make_seller, our_stock, run_worker, sync_now, truth_map


def assert_matches_truth(ours: dict, truth: dict) -> None:
    keys = set(ours) | set(truth)
    diff = {k: (ours.get(k, 0), truth.get(k, 0)) for k in keys if ours.get(k, 0) != truth.get(k, 0)}
    assert not diff, f"{len(diff)} cells differ from the marketplace, e.g. {list(diff.items())[:5]}"


@pytest.fixture
async def wb(client, marketplace_sandbox):
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "wildberries", products=40, warehouses=2, seed=11)
    conn = await connect(client, owner["headers"], seller)
    yield owner, seller, conn
    seller.delete()


async def history_count(settings, tenant_id: str) -> int:
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with session_scope(create_sessionmaker(engine), uuid.UUID(tenant_id)) as s:
            return int((await s.execute(select(func.count()).select_from(StockHistory))).scalar_one())
    finally:
        await engine.dispose()


async def test_wb_sync_matches_the_marketplace_exactly(client, settings, wb):
    """Rules 1, 5, 6: every seller warehouse × every variant (FBS-only variants too), ids as identity,
    numbers exactly as the marketplace holds them."""
    owner, seller, conn = wb
    run = await sync_now(client, settings, owner["headers"], conn["id"])
    assert run["status"] == "succeeded", run
    assert run["counts"]["products"] == 40
    truth = truth_map(seller.truth())
    ours = await our_stock(client, owner["headers"], conn["id"])
    assert_matches_truth(ours, truth)
    fbs_only = {(p, v) for (p, v, w) in truth if w != "-999999"} - {(p, v) for (p, v, w) in truth if w == "-999999"}
    assert fbs_only, "the sandbox seller should have variants with FBS stock only"
    assert all(any((p, v) == (k[0], k[1]) for k in ours) for p, v in fbs_only)


async def test_a_run_records_each_step_of_the_pipeline(client, settings, wb):
    """fetch → normalize → write → evaluate → publish: one record per step, with its stage, status, time and
    counts that agree with the run's own counts."""
    owner, _, conn = wb
    run = await sync_now(client, settings, owner["headers"], conn["id"])
    stages = run["stages"]
    assert {name: r["stage"] for name, r in stages.items()} == {
        "catalogue": "fetch",
        "fbo_stock": "fetch",
        "fbs_stock": "fetch",
        "orders": "fetch",
        "normalize": "normalize",
        "write_catalog": "write",
        "write_stock": "write",
        "write_orders": "write",
        "evaluate": "evaluate",
        "publish": "publish",
    }
    assert all(r["status"] == "success" and r["error"] is None and r["seconds"] >= 0 for r in stages.values())
    counts = run["counts"]
    assert stages["catalogue"]["counts"] == {"products": 40}
    assert stages["normalize"]["counts"]["stock_rows"] == stages["write_stock"]["counts"]["stock_rows"]
    assert stages["write_stock"]["counts"]["stock_rows"] == counts["stock_rows"] > 0
    assert stages["write_stock"]["counts"]["changes"] == counts["changes"] > 0
    assert stages["write_orders"]["counts"]["orders"] == counts["orders"]
    assert stages["evaluate"]["counts"] == {"changed_rows": counts["history_points"]}


async def test_resync_is_idempotent_and_history_only_on_change(client, settings, wb):
    owner, seller, conn = wb
    first = await sync_now(client, settings, owner["headers"], conn["id"])
    points = await history_count(settings, owner["tenant"]["id"])
    assert first["counts"]["history_points"] == points > 0
    await _clear_cooldown(settings, conn["id"], owner["tenant"]["id"])
    second = await sync_now(client, settings, owner["headers"], conn["id"])
    assert second["status"] == "succeeded"
    assert second["counts"]["changes"] == 0 and second["counts"]["history_points"] == 0
    assert await history_count(settings, owner["tenant"]["id"]) == points
    # A change at the marketplace writes exactly that change.
    cell = next(i for i in seller.truth() if i["warehouse_id"] != "-999999")
    seller.set_stocks([{**cell, "quantity": int(cell["quantity"]) + 7}])
    await _clear_cooldown(settings, conn["id"], owner["tenant"]["id"])
    third = await sync_now(client, settings, owner["headers"], conn["id"])
    assert third["counts"]["changes"] == 1
    assert await history_count(settings, owner["tenant"]["id"]) == points + 1
    assert_matches_truth(await our_stock(client, owner["headers"], conn["id"]), truth_map(seller.truth()))


async def test_no_pseudo_warehouses_and_kinds_from_the_api(client, settings, wb):
    """Rule 2 and 4: report pseudo-rows never become warehouses; FBO/FBS comes from the source."""
    owner, _, conn = wb
    await sync_now(client, settings, owner["headers"], conn["id"])
    whs = (
        await client.get("/api/v1/warehouses", params={"connection_id": conn["id"]}, headers=owner["headers"])
    ).json()
    names = {w["name"] for w in whs["items"]}
    assert not names & {
        "В пути до получателей",
        "В пути возвраты на склад WB",
        "Всего находится на складах",
        "Остальные",
    }
    kinds = {w["external_id"]: w["kind"] for w in whs["items"]}
    assert kinds["-999999"] == "fbo"
    assert sum(1 for k, v in kinds.items() if v == "fbs" and not k.startswith("name:")) == 2


async def test_totals_equal_the_sum_of_their_breakdown(client, settings, wb):
    """Rule 7."""
    owner, _, conn = wb
    await sync_now(client, settings, owner["headers"], conn["id"])
    page = (await client.get("/api/v1/products", params={"limit": 500}, headers=owner["headers"])).json()
    grand = 0
    for item in page["items"]:
        detail = (await client.get(f"/api/v1/products/{item['id']}", headers=owner["headers"])).json()
        cells = [c["quantity"] for v in detail["variants"] for c in v["stock"]]
        assert item["total_quantity"] == detail["total_quantity"] == sum(cells)
        assert all(v["total_quantity"] == sum(c["quantity"] for c in v["stock"]) for v in detail["variants"])
        grand += item["total_quantity"]
    summary = (await client.get("/api/v1/stock/summary", headers=owner["headers"])).json()
    assert summary["totals"]["total_quantity"] == grand
    assert sum(w["total_quantity"] for w in summary["by_warehouse"]) == grand


async def test_days_of_cover_carries_formula_window_and_source(client, settings, wb):
    """Rule 8 (and 5: a place with orders but no stock row says unknown, not 0)."""
    owner, _, conn = wb
    await sync_now(client, settings, owner["headers"], conn["id"])
    page = (await client.get("/api/v1/products", params={"limit": 50}, headers=owner["headers"])).json()
    found_orders = False
    for item in page["items"][:12]:
        for window in (7, 14, 30):
            resp = await client.get(
                f"/api/v1/products/{item['id']}/days-of-cover", params={"window": window}, headers=owner["headers"]
            )
            assert resp.status_code == 200, resp.text
            body = resp.json()
            m = body["method"]
            assert m["formula"].startswith("days_of_cover") and m["window"]["days"] == window
            assert m["source"] == "orders" and m["counts_cancelled"] is False
            p = body["product"]
            if p["orders"]:
                found_orders = True
                assert p["velocity_per_day"] == round(p["orders"] / window, 4)
                assert p["days_of_cover"] == round(p["available"] / (p["orders"] / window), 1)
            for w in body["warehouses"]:
                if w["cover"]["available"] is None:
                    assert w["cover"]["days_of_cover"] is None and w["cover"]["note"]
    assert found_orders, "the sandbox seller should have orders in the last 30 days"
    bad = await client.get(
        f"/api/v1/products/{page['items'][0]['id']}/days-of-cover", params={"window": 9}, headers=owner["headers"]
    )
    assert bad.status_code == 422


async def test_stock_report_rows_and_warehouse_blocks(client, settings, wb):
    owner, _, conn = wb
    await sync_now(client, settings, owner["headers"], conn["id"])
    report = (
        await client.get("/api/v1/reports/stock", params={"window": 14, "limit": 1000}, headers=owner["headers"])
    ).json()
    assert report["method"]["window"]["days"] == 14 and report["rows"]
    wh_ids = {w["warehouse_id"] for w in report["warehouses"]}
    for row in report["rows"]:
        assert row["total_stock"] == sum(c["stock"] or 0 for c in row["warehouses"])
        # Every sandbox order line names its warehouse, so the blocks account for all of the row's orders.
        assert row["orders"] == sum(c["orders"] for c in row["warehouses"])
        assert {c["warehouse_id"] for c in row["warehouses"]} <= wh_ids


async def test_invalid_token_marks_the_connection_invalid(client, settings, marketplace_sandbox):
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "wildberries", products=5, warehouses=1, seed=3)
    conn = await connect(client, owner["headers"], seller)
    seller.delete()  # the marketplace no longer knows this token
    run = await sync_now(client, settings, owner["headers"], conn["id"])
    assert run["status"] == "failed" and run["error_code"] == "marketplace_auth"
    assert run["stages"]["catalogue"]["status"] == "failed" and run["stages"]["publish"]["status"] == "success"
    got = (await client.get(f"/api/v1/connections/{conn['id']}", headers=owner["headers"])).json()
    assert got["status"] == "invalid" and got["status_reason"]


async def test_ozon_sync_matches_the_marketplace(client, settings, marketplace_sandbox):
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "ozon", products=30, warehouses=2, seed=5)
    try:
        conn = await connect(client, owner["headers"], seller)
        run = await sync_now(client, settings, owner["headers"], conn["id"])
        assert run["status"] == "succeeded", run
        assert_matches_truth(await our_stock(client, owner["headers"], conn["id"]), truth_map(seller.truth()))
    finally:
        seller.delete()


async def test_manual_trigger_cooldown_and_single_active_run(client, settings, wb):
    owner, _, conn = wb
    first = await client.post(f"/api/v1/connections/{conn['id']}/syncs", headers=owner["headers"])
    again = await client.post(f"/api/v1/connections/{conn['id']}/syncs", headers=owner["headers"])
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]  # one active run, not two
    await run_worker(settings)
    cooldown = await client.post(f"/api/v1/connections/{conn['id']}/syncs", headers=owner["headers"])
    assert cooldown.status_code == 429 and cooldown.json()["code"] == "sync_cooldown"
    assert int(cooldown.headers["retry-after"]) > 0
    runs = (await client.get("/api/v1/syncs", params={"connection_id": conn["id"]}, headers=owner["headers"])).json()
    assert [r["id"] for r in runs["items"]] == [first.json()["id"]]


async def _clear_cooldown(settings, connection_id: str, tenant_id: str) -> None:
    """Age this connection's runs past the manual-trigger cooldown (tests do not wait a minute)."""
    from datetime import timedelta

    from sqlalchemy import update

    from app.db.models import SyncRun

    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with session_scope(create_sessionmaker(engine), uuid.UUID(tenant_id)) as s:
            await s.execute(
                update(SyncRun)
                .where(SyncRun.connection_id == uuid.UUID(connection_id))
                .values(created_at=SyncRun.created_at - timedelta(minutes=5))
            )
    finally:
        await engine.dispose()


async def test_a_finished_sync_makes_cached_pages_stale(client, settings, wb):
    """The product list is cached; the next sync's new numbers are what the next read shows."""
    owner, seller, conn = wb
    await sync_now(client, settings, owner["headers"], conn["id"])
    first = await client.get("/api/v1/products", params={"limit": 500}, headers=owner["headers"])
    again = await client.get("/api/v1/products", params={"limit": 500}, headers=owner["headers"])
    assert first.json() == again.json()
    cell = next(i for i in seller.truth() if i["warehouse_id"] != "-999999")
    seller.set_stocks([{**cell, "quantity": int(cell["quantity"]) + 11}])
    await _clear_cooldown(settings, conn["id"], owner["tenant"]["id"])
    await sync_now(client, settings, owner["headers"], conn["id"])
    after = await client.get("/api/v1/products", params={"limit": 500}, headers=owner["headers"])
    totals = {i["external_id"]: i["total_quantity"] for i in after.json()["items"]}
    before = {i["external_id"]: i["total_quantity"] for i in first.json()["items"]}
    assert totals[cell["product_id"]] == before[cell["product_id"]] + 11
