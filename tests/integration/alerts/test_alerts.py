"""Alert rules and the alert lifecycle end to end: a sandbox seller's stock changes, the sync engine syncs it,
the evaluation opens / escalates / resolves alerts, and the seller hears about it exactly once — by a signed
webhook (verified with `standardwebhooks`) and in Telegram (a local fake Bot API) — or in one digest after
quiet hours. Also: overrides, muting, days of cover, idempotency, token expiry, the record_event contract."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from standardwebhooks.webhooks import Webhook

from app.db.models import Connection
from app.db.models.notifications import Event, WebhookDelivery
from app.domain.alerts.rules import Rule, classify, decide
from app.domain.alerts.services import tenant_low_units
from app.domain.events.jobs import token_expiry_cron
from app.domain.events.quiet import QuietHours
from app.domain.events.services import event_id_for, record_event
from app.domain.telegram.jobs import notifications_sweep
from tests.fakes import drain, sync_and_evaluate, tenant_session, worker_context
from tests.helpers import add_member, register
from tests.integration.alerts.support import products_by_external_id, received
from tests.sync_support import connect, make_seller


async def test_default_rule_api(api, st):
    owner = await register(api)
    h = owner["headers"]
    got = (await api.get("/api/v1/alert-rules/default", headers=h)).json()
    assert got["configured"] is False and got["units_below"] == 5 and got["quiet_hours"] is None
    assert got["timezone"] == "Europe/Moscow" and got["definition"]
    body = {"units_below": 8, "days_of_cover_below": 3.5, "quiet_hours": {"start": "22:00", "end": "08:00"}}
    put = await api.put("/api/v1/alert-rules/default", json=body, headers=h)
    assert put.status_code == 200, put.text
    again = (await api.get("/api/v1/alert-rules/default", headers=h)).json()
    assert again["configured"] is True and again["units_below"] == 8 and again["days_of_cover_below"] == 3.5
    assert again["quiet_hours"] == {"start": "22:00", "end": "08:00"} and again["hysteresis_units"] == 2
    async with tenant_session(st, owner["tenant"]["id"]) as s:
        assert await tenant_low_units(s, uuid.UUID(owner["tenant"]["id"]), 5) == 8
    # Enabled with no threshold at all: the deployment's default units, never a rule that cannot fire.
    fallback = await api.put("/api/v1/alert-rules/default", json={"quiet_hours": None}, headers=h)
    assert fallback.status_code == 200 and fallback.json()["units_below"] == 5
    assert (await api.put("/api/v1/alert-rules/default", json=body, headers=h)).status_code == 200
    for bad in (
        {"units_below": 0},
        {"units_below": 5, "quiet_hours": {"start": "25:00", "end": "08:00"}},
        {"units_below": 5, "cover_window_days": 9},
        {"units_below": 5, "surprise": True},
    ):
        resp = await api.put("/api/v1/alert-rules/default", json=bad, headers=h)
        assert resp.status_code == 422, (bad, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    member = await add_member(api, owner)
    denied = await api.put("/api/v1/alert-rules/default", json={"units_below": 1}, headers=member["member_headers"])
    assert denied.status_code == 403
    other = await register(api, "Other")
    assert (await api.get("/api/v1/alert-rules/default", headers=other["headers"])).json()["configured"] is False


async def test_concurrent_first_puts_of_a_rule_all_succeed(api, st, shop):
    """Several first PUTs of the default rule (and of one product's override) in concurrent transactions —
    what concurrent requests do (the in-process test client runs requests one at a time): every one succeeds,
    one creates the override, one rule of each exists. Before, the losers of the race hit the unique index
    and the API answered 500 (found by the chaos suite's load, tests/chaos/)."""
    import asyncio

    from app.db.models.notifications import AlertRule
    from app.domain.alerts.schemas import AlertRuleDefaultUpdate, ProductAlertRuleUpdate
    from app.domain.alerts.services import AlertRuleService

    tid = uuid.UUID(shop.tid)
    product = uuid.UUID(next(iter((await products_by_external_id(api, shop)).values()))["id"])
    gate = asyncio.Event()

    async def put(units: int, override: bool) -> bool:
        async with tenant_session(st, tid) as s:
            service = AlertRuleService(s, tid, 5)
            await gate.wait()  # every transaction open before any of them inserts
            if override:
                return (await service.put_override(product, None, ProductAlertRuleUpdate(units_below=units)))[1]
            await service.put_default(AlertRuleDefaultUpdate(units_below=units))
            return False

    for override in (False, True):
        tasks = [asyncio.create_task(put(n, override)) for n in (3, 4, 5, 6)]
        await asyncio.sleep(0.3)
        gate.set()
        created = await asyncio.gather(*tasks)
        gate.clear()
        assert sum(created) == (1 if override else 0)
    async with tenant_session(st, tid) as s:
        rules = (await s.execute(select(AlertRule.product_id))).scalars().all()
    assert sorted(rules, key=str) == sorted([None, product], key=str)


async def test_stock_low_then_restored_end_to_end(api, st, shop, receiver, telegram_api):
    """The headline: below the threshold → sync → exactly one stock.low webhook (signature verified) and one
    Telegram message; a repeated evaluation or sync adds nothing; restock → exactly one stock.restored."""
    target = next(iter(shop.cells))
    shop.set({})
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    assert received(receiver, shop) == []
    messages_before = len(telegram_api.sent(shop.chat))

    shop.set({target: 2})
    run_id = await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    [low] = received(receiver, shop)
    assert low["type"] == "stock.low" and low["tenant_id"] == shop.tid
    data = low["data"]
    assert data["product"]["external_id"] == target and data["quantity"] == 2 and data["level"] == "low"
    assert data["threshold"]["units_below"] == 5 and data["sync_run_id"] == run_id and data["warehouse"] is None
    [message] = telegram_api.sent(shop.chat)[messages_before:]
    assert "Low stock" in message.text and target in message.text and "2 left" in message.text
    assert message.payload["parse_mode"] == "HTML"

    # The same run evaluated again (a job that ran twice), and another sync with the same stock: nothing new.
    async with worker_context(st) as ctx:
        await ctx["redis"].enqueue_job(
            "alerts.evaluate",
            tenant_id=shop.tid,
            connection_id=shop.conn["id"],
            run_id=run_id,
            _job_id=f"alerts:{run_id}:again",
        )
    await drain(st)
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    assert len(received(receiver, shop)) == 1 and len(telegram_api.sent(shop.chat)) == messages_before + 1
    opened = (await api.get("/api/v1/alerts", params={"status": "open"}, headers=shop.h)).json()["items"]
    assert [(a["product"]["external_id"], a["level"], a["quantity"]) for a in opened] == [(target, "low", 2)]

    shop.set({target: 30})
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    events = received(receiver, shop)
    assert [e["type"] for e in events] == ["stock.low", "stock.restored"]
    assert events[1]["data"]["alert_id"] == data["alert_id"] and events[1]["data"]["quantity"] == 30
    assert "Back in stock" in telegram_api.sent(shop.chat)[-1].text
    assert (await api.get("/api/v1/alerts", params={"status": "open"}, headers=shop.h)).json()["items"] == []
    [resolved] = (await api.get("/api/v1/alerts", params={"status": "resolved"}, headers=shop.h)).json()["items"]
    assert resolved["resolution"] == "restored" and resolved["resolved_at"]


async def test_escalation_hysteresis_overrides_muting_and_warehouses(api, st, shop, receiver):
    a, b, c, d, e = list(shop.cells)[:5]
    # A product whose stock sits in two warehouses (the seeded seller has one).
    multi = next(pid for pid, cells in shop.cells.items() if len({c["warehouse_id"] for c in cells}) > 1)
    shop.set({a: 3, b: 0, c: 40, d: 0, e: 40})
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    products = await products_by_external_id(api, shop)
    h = shop.h
    # c: its own, stricter rule; d: muted.
    assert (
        await api.put(f"/api/v1/products/{products[c]['id']}/alert-rule", json={"units_below": 10}, headers=h)
    ).status_code == 201
    assert (
        await api.put(f"/api/v1/products/{products[c]['id']}/alert-rule", json={"units_below": 10}, headers=h)
    ).status_code == 200
    assert (
        await api.put(f"/api/v1/products/{products[d]['id']}/alert-rule", json={"enabled": False}, headers=h)
    ).status_code == 201
    types = sorted((ev["type"], ev["data"]["product"]["external_id"]) for ev in received(receiver, shop))
    assert types == sorted([("stock.low", a), ("stock.out", b), ("stock.out", d)])

    # a runs out (escalates once), b is back but inside the hysteresis band (5 ≤ 6 < 7), d is muted: its open
    # alert closes quietly, c falls under its own threshold.
    shop.set({a: 0, b: 6, c: 8, d: 0, e: 40})
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    new = [(ev["type"], ev["data"]["product"]["external_id"]) for ev in received(receiver, shop)][3:]
    assert sorted(new) == sorted([("stock.out", a), ("stock.low", c)])
    low_c = next(ev for ev in received(receiver, shop) if ev["data"]["product"]["external_id"] == c)
    assert low_c["data"]["threshold"]["scope"] == "product" and low_c["data"]["threshold"]["units_below"] == 10

    shop.set({a: 7, b: 7, c: 12, d: 0, e: 40})
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    new = [(ev["type"], ev["data"]["product"]["external_id"]) for ev in received(receiver, shop)][5:]
    assert sorted(new) == sorted([("stock.restored", a), ("stock.restored", b), ("stock.restored", c)])
    resolved = (await api.get("/api/v1/alerts", params={"status": "resolved", "limit": 2}, headers=h)).json()
    assert len(resolved["items"]) == 2 and resolved["next_cursor"]
    rest = (
        await api.get("/api/v1/alerts", params={"status": "resolved", "cursor": resolved["next_cursor"]}, headers=h)
    ).json()["items"]
    everything = resolved["items"] + rest
    assert {x["resolution"] for x in everything} == {"restored", "rule_changed"} and len(everything) == 4

    # A product × warehouse rule watches one place while the product's total is fine.
    cells = shop.cells[multi]
    watched = next(c["warehouse_id"] for c in cells if c["warehouse_id"] != cells[0]["warehouse_id"])
    warehouses = (await api.get("/api/v1/warehouses", params={"connection_id": shop.conn["id"]}, headers=h)).json()
    wid = next(w["id"] for w in warehouses["items"] if w["external_id"] == watched)
    url = f"/api/v1/products/{products[multi]['id']}/alert-rule"
    assert (await api.put(url, params={"warehouse_id": wid}, json={"units_below": 3}, headers=h)).status_code == 201
    assert (await api.get(url, params={"warehouse_id": wid}, headers=h)).json()["warehouse_id"] == wid
    first_there = next(c for c in cells if c["warehouse_id"] == watched)
    shop.seller.set_stocks(
        [{**c, "quantity": 1 if c is first_there else (0 if c["warehouse_id"] == watched else 50)} for c in cells]
    )
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    place = [ev for ev in received(receiver, shop) if ev["data"]["warehouse"]]
    assert len(place) == 1 and place[0]["type"] == "stock.low" and place[0]["data"]["quantity"] == 1
    assert place[0]["data"]["warehouse"]["id"] == wid and place[0]["data"]["threshold"]["scope"] == "warehouse"
    assert (await api.delete(url, params={"warehouse_id": wid}, headers=h)).status_code == 204
    assert (await api.get(url, params={"warehouse_id": wid}, headers=h)).status_code == 404

    overrides = (await api.get("/api/v1/alert-rules", headers=h)).json()["items"]
    assert {o["product_id"] for o in overrides} == {products[c]["id"], products[d]["id"]}
    # Tenant isolation: another organization sees none of this and gets 404 for these ids.
    other = await register(api, "Other")
    oh = other["headers"]
    assert (await api.get("/api/v1/alerts", headers=oh)).json()["items"] == []
    assert (await api.get(f"/api/v1/alerts/{everything[0]['id']}", headers=oh)).status_code == 404
    assert (await api.get(f"/api/v1/alerts/{everything[0]['id']}", headers=h)).status_code == 200
    assert (
        await api.put(f"/api/v1/products/{products[a]['id']}/alert-rule", json={"units_below": 1}, headers=oh)
    ).status_code == 404
    assert (await api.delete(f"/api/v1/products/{products[c]['id']}/alert-rule", headers=oh)).status_code == 404
    assert (await api.get("/api/v1/alert-rules", headers=oh)).json()["items"] == []


async def test_days_of_cover_rule(api, st, marketplace_sandbox, receiver):
    owner = await register(api)
    seller = make_seller(marketplace_sandbox, "wildberries", products=40, warehouses=1, seed=11)
    try:
        conn = await connect(api, owner["headers"], seller)
        seller.set_stocks([{**i, "quantity": 10} for i in seller.truth()])
        await sync_and_evaluate(st, owner["tenant"]["id"], conn["id"])
        page = (await api.get("/api/v1/products", params={"limit": 100}, headers=owner["headers"])).json()["items"]
        sold = []
        for p in page:
            body = (
                await api.get(
                    f"/api/v1/products/{p['id']}/days-of-cover", params={"window": 30}, headers=owner["headers"]
                )
            ).json()
            if body["product"]["orders"]:
                sold.append((p, body["product"]["days_of_cover"]))
            if len(sold) == 1:
                break
        assert sold, "the sandbox seller should have orders in the last 30 days"
        (product, cover), unsold = sold[0], next(p for p in page if p["id"] != sold[0][0]["id"])
        rule = {"units_below": None, "days_of_cover_below": cover + 1, "cover_window_days": 30}
        for p in (product, unsold):
            resp = await api.put(f"/api/v1/products/{p['id']}/alert-rule", json=rule, headers=owner["headers"])
            assert resp.status_code == 201, resp.text
        await sync_and_evaluate(st, owner["tenant"]["id"], conn["id"])
        opened = (await api.get("/api/v1/alerts", params={"status": "open"}, headers=owner["headers"])).json()
        by_product = {a["product"]["id"]: a for a in opened["items"]}
        assert by_product[product["id"]]["days_of_cover"] == cover
        assert by_product[product["id"]]["rule_scope"] == "product"
        assert unsold["id"] not in by_product or by_product[unsold["id"]]["days_of_cover"] is not None
    finally:
        seller.delete()


async def test_quiet_hours_hold_notifications_and_send_one_digest(api, st, shop, receiver, telegram_api):
    tz = ZoneInfo("Europe/Moscow")
    local = datetime.now(tz)
    start, end = (local - timedelta(hours=1)).strftime("%H:%M"), (local + timedelta(hours=1)).strftime("%H:%M")
    body = {"units_below": 5, "quiet_hours": {"start": start, "end": end}}
    assert (await api.put("/api/v1/alert-rules/default", json=body, headers=shop.h)).status_code == 200
    a, b = list(shop.cells)[:2]
    before = len(telegram_api.sent(shop.chat))
    shop.set({a: 1, b: 0})
    await sync_and_evaluate(st, shop.tid, shop.conn["id"])
    assert len(received(receiver, shop)) == 2  # integrations are not held
    assert len(telegram_api.sent(shop.chat)) == before  # people are
    log = (await api.get("/api/v1/alert-suppressions", headers=shop.h)).json()["items"]
    assert [e["reason"] for e in log] == ["quiet_hours", "quiet_hours"]
    assert {e["event_type"] for e in log} == {"stock.low", "stock.out"} and "digest" in log[0]["detail"]
    async with worker_context(st) as ctx:
        await notifications_sweep(ctx)  # still quiet: nothing of ours is due
    await drain(st)
    assert len(telegram_api.sent(shop.chat)) == before
    # Quiet hours end (here: switched off): the next sweep sends everything held, as one digest.
    assert (await api.put("/api/v1/alert-rules/default", json={"units_below": 5}, headers=shop.h)).status_code == 200
    async with worker_context(st) as ctx:
        assert await notifications_sweep(ctx) >= 1
    await drain(st)
    [digest] = telegram_api.sent(shop.chat)[before:]
    assert "While quiet hours were on" in digest.text and "2 updates" in digest.text
    assert "Low stock" in digest.text and "Out of stock" in digest.text
    async with worker_context(st) as ctx:
        await notifications_sweep(ctx)
    await drain(st)
    assert len(telegram_api.sent(shop.chat)) == before + 1


async def test_wb_token_expiring_is_announced_at_7_and_1_days_once(api, st, marketplace_sandbox, receiver):
    owner = await register(api)
    seller = make_seller(marketplace_sandbox, "wildberries", products=1, warehouses=0, seed=3, token_expires_in_days=5)
    try:
        conn = await connect(api, owner["headers"], seller)
        resp = await api.post(
            "/api/v1/webhook-endpoints",
            json={"url": receiver.url("/expiry"), "event_types": ["connection.token_expiring"]},
            headers=owner["headers"],
        )
        secret = resp.json()["secret"]
        async with worker_context(st) as ctx:
            hour_key = f"cron:token-expiry:{datetime.now(UTC):%Y-%m-%dT%H}"
            await ctx["redis"].delete(hour_key)
            assert await token_expiry_cron(ctx) >= 1
            assert await token_expiry_cron(ctx) == 0  # once an hour
            await ctx["redis"].delete(hour_key)
            assert await token_expiry_cron(ctx) == 0  # and each warning once
        async with tenant_session(st, owner["tenant"]["id"]) as s:
            await s.execute(
                update(Connection)
                .where(Connection.id == uuid.UUID(conn["id"]))
                .values(token_expires_at=datetime.now(UTC) + timedelta(hours=12))
            )
        async with worker_context(st) as ctx:
            await ctx["redis"].delete(hour_key)
            assert await token_expiry_cron(ctx) >= 1
        await drain(st)
        warnings = [Webhook(secret).verify(r.body, r.headers)["data"] for r in receiver.at("/expiry")]
        assert sorted((w["threshold_days"], w["days_left"]) for w in warnings) == [(1, 1), (7, 5)]
        assert {w["connection_id"] for w in warnings} == {conn["id"]}
    finally:
        seller.delete()


async def test_record_event_from_another_transaction_publishes_once(api, st, receiver):
    """The sync engine's contract: record_event in its transaction; recording a key twice publishes once."""
    owner = await register(api)
    tid = uuid.UUID(owner["tenant"]["id"])
    resp = await api.post(
        "/api/v1/webhook-endpoints",
        json={"url": receiver.url("/recorded"), "event_types": ["sync.failed"]},
        headers=owner["headers"],
    )
    secret = resp.json()["secret"]
    run = uuid.uuid4()
    for _ in range(2):  # a sync job that ran twice
        async with tenant_session(st, tid) as s:
            record_event(
                s, tid, "sync.failed", {"run_id": run, "at": datetime.now(UTC), "error": "x"}, key=f"sync.failed:{run}"
            )
    await drain(st)
    [req] = receiver.wait_for("/recorded", 1)
    body = Webhook(secret).verify(req.body, req.headers)
    assert body["id"] == str(event_id_for(f"sync.failed:{run}")) and body["data"]["run_id"] == str(run)
    async with tenant_session(st, tid) as s:
        assert (await s.execute(select(func.count()).select_from(Event))).scalar_one() == 1
        assert (await s.execute(select(func.count()).select_from(WebhookDelivery))).scalar_one() == 1


def test_lifecycle_rules_and_quiet_hours_are_pure():
    rule = Rule(scope="default", enabled=True, units_below=5, days_of_cover_below=None)
    assert [classify(rule, q, None) for q in (0, 4, 5, 6, 7)] == ["out", "low", "band", "band", "ok"]
    cover = Rule(scope="product", enabled=True, units_below=None, days_of_cover_below=3.0)
    assert (
        classify(cover, 10, 2.0) == "low" and classify(cover, 10, None) == "ok" and classify(cover, 10, 3.5) == "band"
    )
    assert decide(None, "low") == "open" and decide(None, "band") == "none"
    assert decide("low", "out") == "escalate" and decide("out", "low") == "keep" and decide("out", "ok") == "resolve"
    q = QuietHours(time(22, 0), time(8, 0), "Europe/Moscow")
    assert q.held_until(datetime(2026, 1, 1, 20, 30, tzinfo=UTC)) == datetime(2026, 1, 2, 5, 0, tzinfo=UTC)
    assert q.held_until(datetime(2026, 1, 1, 4, 0, tzinfo=UTC)) == datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
    assert q.held_until(datetime(2026, 1, 1, 12, 0, tzinfo=UTC)) is None
    assert QuietHours(time(9, 0), time(9, 0), "UTC").held_until(datetime.now(UTC)) is None
    assert QuietHours(time(1, 0), time(2, 0), "Not/AZone").held_until(datetime(2026, 1, 1, 1, 30, tzinfo=UTC))
