"""Silence where a message per product would be a flood (issue 13 §1): a connection's first sync opens its
alerts as the baseline and sends one ``stock.digest``; so does the first sync after a long pause, and a sync
with more alerts than the organization's cap. Each digest once, by webhook and in Telegram; the alerts
themselves are open as usual. Also the SQL classification held to the Python rules case by case."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import asyncpg
from sqlalchemy import select, text

from app.db.models.notifications import AlertEvaluation
from app.domain.alerts.rules import Rule, classify, decide
from app.domain.alerts.transitions import ACTION, STATE
from tests.conftest import _asyncpg_kwargs
from tests.fakes import drain, sync_and_evaluate, tenant_session, worker_context
from tests.fakes.telegram import link_chat, new_chat_id
from tests.helpers import register
from tests.integration.alerts.support import STOCK_EVENTS, Shop, received
from tests.sync_support import connect, make_seller


async def new_shop(api, st, sandbox, receiver, telegram_api, products: int, seed: int) -> Shop:
    """A shop whose connection has never been synced."""
    owner = await register(api)
    seller = make_seller(sandbox, "wildberries", products=products, warehouses=1, seed=seed)
    conn = await connect(api, owner["headers"], seller, name=f"Shop {seed}")
    path = f"/digest-{uuid.uuid4().hex[:8]}"
    resp = await api.post(
        "/api/v1/webhook-endpoints",
        json={"url": receiver.url(path), "event_types": STOCK_EVENTS},
        headers=owner["headers"],
    )
    assert resp.status_code == 201, resp.text
    chat = new_chat_id()
    await link_chat(api, owner["headers"], st, telegram_api, chat)
    return Shop(owner, seller, conn, resp.json(), path, chat)


async def open_alerts(api, shop: Shop) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        params = {"status": "open", "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/api/v1/alerts", params=params, headers=shop.h)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def test_first_sync_is_silent_and_sends_one_digest(api, st, marketplace_sandbox, receiver, telegram_api):
    shop = await new_shop(api, st, marketplace_sandbox, receiver, telegram_api, products=12, seed=71)
    try:
        pids = list(shop.cells)
        shop.set({pids[0]: 0, pids[1]: 0, pids[2]: 3, pids[3]: 1, pids[4]: 4})
        messages_before = len(telegram_api.sent(shop.chat))
        run_id = await sync_and_evaluate(st, shop.tid, shop.conn["id"])
        [digest] = received(receiver, shop)  # one event, not five
        assert digest["type"] == "stock.digest"
        data = digest["data"]
        assert data["reason"] == "first_sync" and data["sync_run_id"] == run_id
        assert data["opened"] == {"low": 3, "out": 2} and data["open_now"] == {"low": 3, "out": 2}
        assert data["connection_name"] == "Shop 71" and data["restored"] == 0
        assert [e["level"] for e in data["examples"]] == ["out", "out", "low", "low", "low"]
        assert [e["quantity"] for e in data["examples"][2:]] == [1, 3, 4]  # the fewest units left first
        assert data["report_url"] == f"http://testserver.local/api/v1/reports/stock?connection_id={shop.conn['id']}"
        [message] = telegram_api.sent(shop.chat)[messages_before:]
        assert "First sync of <b>Shop 71</b>: 3 products are low, 2 are out." in message.text
        assert "/api/v1/reports/stock" in message.text
        # The alerts are open (silently): the API lists them, and the next change is news again.
        alerts = await open_alerts(api, shop)
        assert sorted(a["level"] for a in alerts) == ["low", "low", "low", "out", "out"]
        # The same run evaluated again changes nothing and sends nothing.
        async with worker_context(st) as ctx:
            await ctx["redis"].enqueue_job(
                "alerts.evaluate",
                tenant_id=shop.tid,
                connection_id=shop.conn["id"],
                run_id=run_id,
                _job_id=f"alerts:{run_id}:again",
            )
        await drain(st)
        assert len(received(receiver, shop)) == 1
        shop.set({pids[0]: 0, pids[1]: 0, pids[2]: 3, pids[3]: 1, pids[4]: 4, pids[5]: 2})
        await sync_and_evaluate(st, shop.tid, shop.conn["id"])
        later = received(receiver, shop)[1:]
        assert [(e["type"], e["data"]["product"]["external_id"]) for e in later] == [("stock.low", pids[5])]
    finally:
        shop.seller.delete()


async def test_nothing_low_at_first_sync_sends_nothing(api, st, marketplace_sandbox, receiver, telegram_api):
    shop = await new_shop(api, st, marketplace_sandbox, receiver, telegram_api, products=4, seed=72)
    try:
        shop.set({})
        before = len(telegram_api.sent(shop.chat))
        await sync_and_evaluate(st, shop.tid, shop.conn["id"])
        assert received(receiver, shop) == [] and len(telegram_api.sent(shop.chat)) == before
        async with tenant_session(st, shop.tid) as s:
            [counts] = (await s.execute(select(AlertEvaluation.counts))).scalars().all()
        assert counts["mode"] == "baseline" and counts["opened"] == 0 and counts["digest"] is None
    finally:
        shop.seller.delete()


async def test_first_sync_after_a_long_pause_is_a_digest_too(api, st, shop, receiver, database):
    a, b, c = list(shop.cells)[:3]
    # The previous evaluation was two days ago (longer than alert_baseline_after_hours, 24 by default).
    owner = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    try:
        async with owner.transaction():
            await owner.execute("SELECT set_config('app.tenant_id', $1, true)", shop.tid)
            await owner.execute(
                "UPDATE alert_evaluations SET evaluated_at = evaluated_at - $1::interval WHERE tenant_id = $2",
                timedelta(days=2),
                uuid.UUID(shop.tid),
            )
    finally:
        await owner.close()
    shop.set({a: 0, b: 2})
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    [digest] = received(receiver, shop)
    assert digest["type"] == "stock.digest" and digest["data"]["reason"] == "resumed"
    assert digest["data"]["opened"] == {"low": 1, "out": 1}
    # Back to normal at once: the next change is one event.
    shop.set({a: 0, b: 2, c: 1})
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    assert [e["type"] for e in received(receiver, shop)] == ["stock.digest", "stock.low"]


async def test_more_alerts_than_the_cap_become_one_digest(api, st, shop, receiver, telegram_api):
    a, b, c, d, e = list(shop.cells)[:5]
    body = {"units_below": 5, "max_alerts_per_sync": 2}
    resp = await api.put("/api/v1/alert-rules/default", json=body, headers=shop.h)
    assert resp.status_code == 200 and resp.json()["max_alerts_per_sync"] == 2
    assert (
        await api.put("/api/v1/alert-rules/default", json={**body, "max_alerts_per_sync": -1}, headers=shop.h)
    ).status_code == 422
    before = len(telegram_api.sent(shop.chat))
    shop.set({a: 0, b: 1, c: 2})  # three alerts at once, over the cap of two
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    [digest] = received(receiver, shop)
    assert digest["type"] == "stock.digest" and digest["data"]["reason"] == "flood"
    assert digest["data"]["opened"] == {"low": 2, "out": 1} and digest["data"]["open_now"] == {"low": 2, "out": 1}
    [message] = telegram_api.sent(shop.chat)[before:]
    assert "3 new alerts, 0 back in stock — now 2 products are low, 1 is out." in message.text
    assert len(await open_alerts(api, shop)) == 3
    # Two at once is within the cap: an event each.
    shop.set({a: 0, b: 1, c: 2, d: 0, e: 3})
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    assert sorted(ev["type"] for ev in received(receiver, shop)[1:]) == ["stock.low", "stock.out"]
    # A cap of 0: every sync's alerts as a digest.
    assert (
        await api.put("/api/v1/alert-rules/default", json={**body, "max_alerts_per_sync": 0}, headers=shop.h)
    ).status_code == 200
    shop.set({a: 40, b: 1, c: 2, d: 0, e: 3})
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    last = received(receiver, shop)[-1]
    assert last["type"] == "stock.digest" and last["data"]["restored"] == 1


async def test_only_changed_products_are_judged_when_nothing_else_moved(api, st, shop):
    """A resync that changed one product judges that product and the open alerts, not the whole catalogue;
    a rule change judges every product again."""
    a, b = list(shop.cells)[:2]
    shop.set({a: 2})
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    shop.set({a: 2, b: 30})
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    assert (await api.put("/api/v1/alert-rules/default", json={"units_below": 6}, headers=shop.h)).status_code == 200
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    async with tenant_session(st, shop.tid) as s:
        rows = (await s.execute(select(AlertEvaluation.counts).order_by(AlertEvaluation.evaluated_at))).scalars().all()
    modes = [(r["mode"], r["subjects"]) for r in rows]
    # baseline (all 5), a changed (a), a and b changed (+ a's open alert: 2), the rules changed (all 5).
    assert modes == [("baseline", 5), ("changed", 1), ("changed", 2), ("full", 5)]


async def test_sql_classification_and_lifecycle_match_the_rules(database):
    """``transitions.STATE`` / ``ACTION`` (SQL) give what ``rules.classify`` / ``decide`` (Python) give."""
    conn = await asyncpg.connect(**_asyncpg_kwargs(database["app"]))
    try:
        cases = []
        for units, days, qty, cover in itertools.product(
            (None, 5), (None, 3.0), (-1, 0, 1, 4, 5, 6, 7, 40), (None, 1.5, 3.0, 3.5, 4.0, 9.0)
        ):
            if units is None and days is None:
                continue
            rule = Rule(scope="default", enabled=True, units_below=units, days_of_cover_below=days)
            cases.append(
                (qty, units, days, rule.hysteresis_units, rule.hysteresis_days, cover, classify(rule, qty, cover))
            )
        stmt = (
            f"SELECT {STATE} FROM (VALUES ($1::int, $2::int, $3::float8, $4::int, $5::float8)) "
            "s(qty, units_below, days_below, hyst_units, hyst_days), (VALUES ($6::float8)) c(cover)"
        )
        got = [await conn.fetchval(stmt, *case[:6]) for case in cases]
        assert got == [case[6] for case in cases]
        action = f"SELECT {ACTION} FROM (VALUES ($1::uuid, $2::text, $3::text)) j(alert_id, open_level, state)"
        for level, state in itertools.product((None, "low", "out"), ("out", "low", "band", "ok")):
            alert_id = uuid.uuid4() if level else None
            expected = decide(level, state)  # type: ignore[arg-type]
            assert await conn.fetchval(action, alert_id, level, state) == expected, (level, state)
    finally:
        await conn.close()


async def test_alert_rows_are_tenant_scoped_in_the_set_based_path(api, st, shop):
    """The statement runs under the tenant's row-level security: another tenant's session sees nothing."""
    a = next(iter(shop.cells))
    shop.set({a: 0})
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    other = await register(api, "Other")
    async with tenant_session(st, other["tenant"]["id"]) as s:
        assert (await s.execute(text("SELECT count(*) FROM alerts"))).scalar_one() == 0
    async with tenant_session(st, shop.tid) as s:
        assert (await s.execute(text("SELECT count(*) FROM alerts WHERE status = 'open'"))).scalar_one() == 1
