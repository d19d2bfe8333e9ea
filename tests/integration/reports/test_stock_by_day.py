"""Stock by day: end-of-day stock per size × date in the organization's time zone, carried forward from the
history (one value per day though nothing changed), days out of stock and lost orders; unchanged by the
retention sweep's end-of-day compaction; as XLSX in the cabinet's "Остатки по дням" layout."""

from __future__ import annotations

import io
import uuid
from collections import defaultdict
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import openpyxl
import pytest

from tests.conftest import _asyncpg_kwargs
from tests.fakes import sync_and_evaluate
from tests.helpers import register
from tests.sync_support import connect, make_seller, sync_now

MOSCOW = ZoneInfo("Europe/Moscow")


def per_variant(items: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for i in items:
        out[str(i["variant_id"])] += int(i["quantity"])
    return out


async def as_owner(db: asyncpg.Connection, tenant: str, sql: str, *args: Any) -> Any:
    async with db.transaction():
        await db.execute("SELECT set_config('app.tenant_id', $1, true)", tenant)
        return await db.fetch(sql, *args)


@pytest.fixture(scope="module")
async def history(client, settings, marketplace_sandbox, database):
    """Three syncs: two on the morning of three days ago (the second one later that day), one now."""
    owner = await register(client)
    tenant = owner["tenant"]["id"]
    seller = make_seller(marketplace_sandbox, "wildberries", products=6, warehouses=1, seed=23)
    db = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    today = datetime.now(MOSCOW).date()
    day = today - timedelta(days=3)
    try:
        conn = await connect(client, owner["headers"], seller)
        truth0 = seller.truth()
        assert (await sync_now(client, settings, owner["headers"], conn["id"]))["status"] == "succeeded"
        first = datetime.combine(day, time(10), MOSCOW)
        await as_owner(db, tenant, "UPDATE stock_history SET at = $2 WHERE tenant_id = $1", uuid.UUID(tenant), first)
        variants = sorted(per_variant(truth0))
        gone, grown = variants[0], variants[1]
        changes = {gone: lambda q: 0, grown: lambda q: q + 5}
        truth_a = [{**i, "quantity": changes.get(str(i["variant_id"]), lambda q: q)(i["quantity"])} for i in truth0]
        seller.set_stocks(truth_a)
        run_a = await sync_and_evaluate(settings, tenant, conn["id"])  # scheduled: no manual-sync cooldown
        await as_owner(
            db, tenant, "UPDATE stock_history SET at = $3 WHERE tenant_id = $1 AND sync_run_id = $2",
            uuid.UUID(tenant), uuid.UUID(run_a), first + timedelta(hours=2),
        )  # fmt: skip
        truth_b = [{**i, "quantity": 3 if str(i["variant_id"]) == gone else i["quantity"]} for i in truth_a]
        seller.set_stocks(truth_b)
        await sync_and_evaluate(settings, tenant, conn["id"])
        yield {
            "owner": owner, "tenant": tenant, "db": db, "today": today, "day": day, "gone": gone,
            "truths": (truth0, truth_a, truth_b),
        }  # fmt: skip
    finally:
        await db.close()
        seller.delete()


async def by_day(client, owner, start, end, **params: Any) -> Any:
    return await client.get(
        "/api/v1/reports/stock-by-day",
        params={"from": start.isoformat(), "to": end.isoformat(), "limit": 1000, **params},
        headers=owner["headers"],
    )


async def test_end_of_day_values_carried_forward_one_per_day(client, history):
    h = history
    start = h["day"] - timedelta(days=1)
    resp = await by_day(client, h["owner"], start, h["today"])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["dates"] == [(start + timedelta(days=i)).isoformat() for i in range(5)]
    assert body["method"]["timezone"] == "Europe/Moscow" and body["method"]["from"] == start.isoformat()
    _t0, truth_a, truth_b = (per_variant(t) for t in h["truths"])
    rows = {r["variant_external_id"]: r for r in body["rows"]}
    assert set(rows) == set(truth_a)
    for variant, row in rows.items():
        # Unknown before the first point; the day's last point (the later sync) for three days with no point
        # of their own; then today's.
        assert row["stock"] == [None, truth_a[variant], truth_a[variant], truth_a[variant], truth_b[variant]], variant
    gone = rows[h["gone"]]
    assert (gone["days_out_of_stock"], gone["days_in_stock"], gone["days_unknown"]) == (3, 1, 1)
    assert gone["lost_orders_estimate"] == round(3 * gone["orders"] / 1, 1)
    assert all(r["lost_orders_estimate"] == 0.0 for r in body["rows"] if r["days_out_of_stock"] == 0)
    products = (await by_day(client, h["owner"], start, h["today"], per="product")).json()
    for p in products["rows"]:
        sizes = [r["stock"] for r in body["rows"] if r["product_id"] == p["product_id"]]
        summed = [None if all(s[i] is None for s in sizes) else sum(s[i] or 0 for s in sizes) for i in range(5)]
        assert p["stock"] == summed and p["size"] is None


async def test_the_end_of_day_compaction_changes_nothing(client, history, database):
    h = history
    start = h["day"] - timedelta(days=1)
    before = (await by_day(client, h["owner"], start, h["today"])).json()
    db: asyncpg.Connection = h["db"]
    tid = uuid.UUID(h["tenant"])
    count = "SELECT count(*) AS n FROM stock_history WHERE tenant_id = $1"
    points_before = (await as_owner(db, h["tenant"], count, tid))[0]["n"]
    await db.execute("UPDATE tenants SET plan = 'reports-compaction-test' WHERE id = $1", tid)
    # The retention sweep itself, with a zero-day history for this plan only (every other tenant keeps all).
    await db.execute(
        "SELECT * FROM st_retention_sweep(100000, 36500, 36500, 36500, $1, $2, 36500)",
        ["reports-compaction-test"], [0],
    )  # fmt: skip
    points_after = (await as_owner(db, h["tenant"], count, tid))[0]["n"]
    assert points_after < points_before  # the morning's first points of the changed cells are gone
    after = (await by_day(client, h["owner"], start, h["today"])).json()
    assert after["rows"] == before["rows"]


async def test_xlsx_is_the_cabinets_layout_and_equals_the_json(client, history):
    h = history
    start = h["day"]
    body = (await by_day(client, h["owner"], start, h["today"])).json()
    resp = await by_day(client, h["owner"], start, h["today"], format="xlsx", lang="ru")
    assert resp.status_code == 200, resp.text
    ws = openpyxl.load_workbook(io.BytesIO(resp.content))["Остатки по дням"]
    grid = [list(r) for r in ws.iter_rows(values_only=True)]
    dates = [f"{(start + timedelta(days=i)):%d.%m.%Y}" for i in range(4)]
    assert grid[1] == ["Артикул продавца", "Название", "Артикул МП", "Предмет", "Бренд", "Размер", *dates,
                       "Дней без остатка", "Заказы за период", "Упущенные заказы (оценка)"]  # fmt: skip
    expected = [
        [r["vendor_code"], r["title"], r["external_id"], r["subject"], r["brand"], r["size"], *r["stock"],
         r["days_out_of_stock"], r["orders"], r["lost_orders_estimate"]]
        for r in body["rows"]
    ]  # fmt: skip
    assert grid[2 : 2 + len(expected)] == expected
    assert grid[-1][0] == "Итого" and grid[-1][6] == sum(r["stock"][0] for r in body["rows"])
    zero_row = next(i for i, r in enumerate(body["rows"]) if r["stock"][0] == 0)
    assert ws.cell(row=3 + zero_row, column=7).fill.fgColor.rgb == "FFFFC7CE"  # out of stock: red


async def test_the_range_is_checked(client, history):
    h = history
    today = h["today"]
    reversed_ = await by_day(client, h["owner"], today, today - timedelta(days=1))
    assert reversed_.status_code == 422 and reversed_.json()["errors"][0]["field"] == "from"
    future = await by_day(client, h["owner"], today, today + timedelta(days=1))
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "to"
    too_long = await by_day(client, h["owner"], today - timedelta(days=100), today)
    assert too_long.status_code == 422
    missing = await client.get(
        "/api/v1/reports/stock-by-day", params={"to": today.isoformat()}, headers=h["owner"]["headers"]
    )
    assert missing.status_code == 422
