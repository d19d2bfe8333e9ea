"""Every plan limit hit once, through the real app with billing on: connections, webhook endpoints, members and
API keys (403 `plan-limit` naming the limit, the plan and the way up), products per sync (a stable choice,
reported by the run and the API; a downgrade keeps the data), the manual-sync interval (429 with when the
next is allowed), connections past the limit and read-only organizations left out of the schedule, and the
read-only state itself (402 on writes, reads go on). None of it calls Stripe: its address here is closed."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from arq.connections import ArqRedis
from litestar.testing import AsyncTestClient

from app.config import Settings
from app.db.engine import create_engine, create_sessionmaker
from app.domain.sync.scheduler import fan_out
from app.lib.clock import utcnow
from app.lib.redis import arq_client
from tests.conftest import _asyncpg_kwargs
from tests.fakes import drain, sync_and_evaluate
from tests.helpers import add_member, invite, register
from tests.sync_support import connect, make_seller, run_worker

PROBLEM = "application/problem+json"


@pytest.fixture
def api(limited_api: AsyncTestClient[Any]) -> AsyncTestClient[Any]:
    return limited_api


async def sql(database: dict[str, str], query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def set_plan(database: dict[str, str], tenant: str, plan: str) -> None:
    tid = uuid.UUID(tenant)
    await sql(database, "UPDATE tenants SET plan = $1 WHERE id = $2", plan, tid)
    await sql(
        database,
        "UPDATE billing_accounts SET plan = $1, status = 'active', access_ends_at = NULL, "
        "stripe_subscription_id = 'sub_test_' || $2::text WHERE tenant_id = $3",
        plan,
        tenant[:8],
        tid,
    )


def assert_plan_limit(resp: Any, limit: str, plan: str, allowed: int) -> dict[str, Any]:
    assert resp.status_code == 403, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body = resp.json()
    assert body["type"].endswith("/plan-limit") and body["code"] == "plan_limit"
    detail = body["plan_limit"]
    assert (detail["limit"], detail["plan"], detail["allowed"]) == (limit, plan, allowed)
    assert detail["upgrade_plans"] and detail["upgrade"].startswith("POST /api/v1/billing/")
    assert plan.capitalize()[:3] in body["detail"] and "pgrade" in body["detail"]
    return dict(body)


async def test_a_second_connection_on_the_trial(api, marketplace_sandbox) -> None:
    owner = await register(api)
    seller = make_seller(marketplace_sandbox, products=3, warehouses=1, seed=101)
    await connect(api, owner["headers"], seller, "First")
    resp = await api.post(
        "/api/v1/connections",
        json={"marketplace": "wildberries", "name": "Second", "credentials": seller.credentials},
        headers=owner["headers"],
    )
    body = assert_plan_limit(resp, "connections", "trial", 1)
    assert body["plan_limit"]["current"] == 1
    assert body["plan_limit"]["upgrade_plans"] == ["pro", "enterprise"]
    assert body["plan_limit"]["upgrade"] == "POST /api/v1/billing/checkout"  # no subscription yet


async def test_webhook_endpoints_by_plan(api, database) -> None:
    owner = await register(api)
    first = await api.post("/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/a"}, headers=owner["headers"])
    assert first.status_code == 201, first.text
    second = await api.post("/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/b"}, headers=owner["headers"])
    assert_plan_limit(second, "webhook_endpoints", "trial", 1)
    await set_plan(database, owner["tenant"]["id"], "starter")
    none = await api.post("/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/c"}, headers=owner["headers"])
    body = assert_plan_limit(none, "webhook_endpoints", "starter", 0)
    assert "does not include webhooks" in body["detail"]
    assert body["plan_limit"]["upgrade"] == "POST /api/v1/billing/change"


async def test_members_on_the_trial(api) -> None:
    owner = await register(api)
    for _ in range(2):
        await add_member(api, owner)
    fourth = await register(api, "Other")
    resp = await api.post(
        "/api/v1/invitations", json={"email": fourth["email"], "role": "member"}, headers=owner["headers"]
    )
    assert_plan_limit(resp, "members", "trial", 3)


async def test_an_invitation_accepted_past_the_member_limit_is_refused(api) -> None:
    """Invitations sent while there was room: the second acceptance would make a fourth member."""
    owner = await register(api)
    await add_member(api, owner)
    first, second = await register(api, "Other"), await register(api, "Other")
    invitations = [await invite(api, owner, person["email"]) for person in (first, second)]
    accepted = await api.post(
        "/api/v1/invitations/accept", json={"token": invitations[0]["token"]}, headers=first["headers"]
    )
    assert accepted.status_code == 200, accepted.text
    resp = await api.post(
        "/api/v1/invitations/accept", json={"token": invitations[1]["token"]}, headers=second["headers"]
    )
    assert_plan_limit(resp, "members", "trial", 3)


async def test_api_keys_on_the_trial(api) -> None:
    owner = await register(api)
    for name in ("one", "two"):
        made = await api.post("/api/v1/api-keys", json={"name": name}, headers=owner["headers"])
        assert made.status_code == 201, made.text
    resp = await api.post("/api/v1/api-keys", json={"name": "three"}, headers=owner["headers"])
    assert_plan_limit(resp, "api_keys", "trial", 2)
    # A revoked key frees its place.
    keys = (await api.get("/api/v1/api-keys", headers=owner["headers"])).json()["items"]
    assert (await api.delete(f"/api/v1/api-keys/{keys[0]['id']}", headers=owner["headers"])).status_code == 204
    assert (await api.post("/api/v1/api-keys", json={"name": "three"}, headers=owner["headers"])).status_code == 201


async def stock_of(database: dict[str, str], tenant: str) -> dict[str, int]:
    rows = await sql(
        database,
        "SELECT p.external_id, sum(s.quantity)::int AS q FROM products p "
        "LEFT JOIN stock_levels s ON s.product_id = p.id WHERE p.tenant_id = $1 GROUP BY p.external_id",
        uuid.UUID(tenant),
    )
    return {r["external_id"]: r["q"] or 0 for r in rows}


async def latest_run(database: dict[str, str], connection: str) -> dict[str, Any]:
    (row,) = await sql(
        database,
        "SELECT status, counts, stages FROM sync_runs WHERE connection_id = $1 ORDER BY created_at DESC LIMIT 1",
        uuid.UUID(connection),
    )
    import json

    return {"status": row["status"], "counts": json.loads(row["counts"]), "stages": json.loads(row["stages"])}


async def test_products_per_sync_a_stable_choice_and_a_downgrade_keeps_the_data(
    api, limited_settings, database, marketplace_sandbox
) -> None:
    owner = await register(api)
    tenant = owner["tenant"]["id"]
    seller = make_seller(marketplace_sandbox, products=130, warehouses=1, seed=202)
    conn = await connect(api, owner["headers"], seller)
    # The trial syncs 100 products: the first 100 by marketplace id (none is tracked yet).
    await sync_and_evaluate(limited_settings, tenant, conn["id"])
    run = await latest_run(database, conn["id"])
    assert run["status"] == "succeeded"
    assert run["counts"]["products_left_out"] == 30
    assert run["counts"]["product_limit"]["limit"] == 100 and "100 products" in run["counts"]["product_limit"]["reason"]
    assert run["stages"]["write_catalog"]["counts"]["products_left_out"] == 30
    ids = sorted({p["product_id"] for p in seller.truth()}, key=lambda x: (len(x), x))
    stored = await stock_of(database, tenant)
    assert sorted(stored, key=lambda x: (len(x), x)) == ids[:100]
    state = (await api.get("/api/v1/billing", headers=owner["headers"])).json()
    assert state["usage"]["products"] == {"used": 100, "limit": 100, "left_out": 30}
    assert any("30 product(s) were left out" in n for n in state["notices"])

    # Pro tracks the rest; back on a 100-product plan, the earliest tracked keep syncing and the other
    # 30 keep their last numbers (not zeroed, not deleted).
    await set_plan(database, tenant, "pro")
    await sync_and_evaluate(limited_settings, tenant, conn["id"])
    assert len(await stock_of(database, tenant)) == 130
    # …with their cards: the catalogue's cursor never moved past the cards that were left out.
    untitled = await sql(
        database, "SELECT count(*) AS n FROM products WHERE tenant_id = $1 AND title IS NULL", uuid.UUID(tenant)
    )
    assert untitled[0]["n"] == 0
    await set_plan(database, tenant, "starter")
    truth = seller.truth()
    kept_cell = next(c for c in truth if c["product_id"] == ids[0])
    left_cell = next(c for c in truth if c["product_id"] == ids[-1])
    before = await stock_of(database, tenant)
    seller.set_stocks([{**kept_cell, "quantity": 4321}, {**left_cell, "quantity": 0}])
    await sync_and_evaluate(limited_settings, tenant, conn["id"])
    after = await stock_of(database, tenant)
    assert len(after) == 130  # nothing deleted
    assert after[ids[0]] != before[ids[0]]  # kept: synced
    assert after[ids[-1]] == before[ids[-1]] > 0  # left out: its data as it was
    assert (await latest_run(database, conn["id"]))["counts"]["products_left_out"] == 30


async def test_manual_syncs_are_held_to_the_plan_interval(api, limited_settings, database, marketplace_sandbox) -> None:
    owner = await register(api)
    seller = make_seller(marketplace_sandbox, products=3, warehouses=1, seed=303)
    conn = await connect(api, owner["headers"], seller)
    first = await api.post(f"/api/v1/connections/{conn['id']}/syncs", headers=owner["headers"])
    assert first.status_code == 202, first.text
    await run_worker(limited_settings)
    # Past the one-minute cooldown, the trial's 120 minutes still apply.
    await sql(
        database,
        "UPDATE sync_runs SET created_at = created_at - interval '5 minutes' WHERE connection_id = $1",
        uuid.UUID(conn["id"]),
    )
    resp = await api.post(f"/api/v1/connections/{conn['id']}/syncs", headers=owner["headers"])
    assert resp.status_code == 429, resp.text
    body = resp.json()
    assert body["type"].endswith("/sync-interval") and body["code"] == "sync_interval"
    assert body["plan_limit"]["limit"] == "sync_interval" and body["plan_limit"]["allowed"] == 120
    retry = int(resp.headers["retry-after"])
    assert 115 * 60 - 5 <= retry <= 115 * 60 + 5
    assert body["plan_limit"]["next_allowed_at"] and "next one is" in body["detail"]
    # Enterprise allows one every 10 minutes: 5 minutes later is still too soon, 11 minutes is fine.
    await set_plan(database, owner["tenant"]["id"], "enterprise")
    assert (await api.post(f"/api/v1/connections/{conn['id']}/syncs", headers=owner["headers"])).status_code == 429
    await sql(
        database,
        "UPDATE sync_runs SET created_at = created_at - interval '6 minutes' WHERE connection_id = $1",
        uuid.UUID(conn["id"]),
    )
    assert (await api.post(f"/api/v1/connections/{conn['id']}/syncs", headers=owner["headers"])).status_code == 202


async def scheduled(settings: Settings, tenant: str) -> dict[str, bool]:
    """Run the fan-out into a throwaway queue; which of the organization's connections it enqueued."""
    queue = f"arq:test:fanout:{uuid.uuid4().hex}"
    redis: ArqRedis = arq_client(settings.redis_url, queue)
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        await fan_out(create_sessionmaker(engine), redis, settings)
        jobs = {j.kwargs["connection_id"]: j.job_id for j in await redis.queued_jobs(queue_name=queue)}
        rows = await sql_app(settings, tenant)
        await redis.delete(queue, *[f"arq:job:{job_id}" for job_id in jobs.values()])
        return {conn: conn in jobs for conn in rows}
    finally:
        await redis.aclose()
        await engine.dispose()


async def sql_app(settings: Settings, tenant: str) -> list[str]:
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        from sqlalchemy import text

        async with engine.connect() as c:
            await c.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": tenant})
            rows = await c.execute(text("SELECT id FROM connections ORDER BY created_at"))
            return [str(r[0]) for r in rows]
    finally:
        await engine.dispose()


async def test_connections_past_the_limit_keep_their_data_but_are_not_synced(
    api, limited_settings, database, marketplace_sandbox
) -> None:
    owner = await register(api)
    tenant = owner["tenant"]["id"]
    await set_plan(database, tenant, "pro")
    conns = [
        await connect(
            api, owner["headers"], make_seller(marketplace_sandbox, products=2, warehouses=1, seed=s), f"S{s}"
        )
        for s in (404, 405)
    ]
    await sql(database, "UPDATE connections SET last_scheduled_slot = 0 WHERE tenant_id = $1", uuid.UUID(tenant))
    assert await scheduled(limited_settings, tenant) == {conns[0]["id"]: True, conns[1]["id"]: True}
    await sql(database, "UPDATE connections SET last_scheduled_slot = 0 WHERE tenant_id = $1", uuid.UUID(tenant))
    await set_plan(database, tenant, "starter")  # one connection
    assert await scheduled(limited_settings, tenant) == {conns[0]["id"]: True, conns[1]["id"]: False}
    resp = await api.post(f"/api/v1/connections/{conns[1]['id']}/syncs", headers=owner["headers"])
    body = assert_plan_limit(resp, "connections", "starter", 1)
    assert "number 2" in body["detail"]
    assert (await api.get(f"/api/v1/connections/{conns[1]['id']}", headers=owner["headers"])).status_code == 200
    state = (await api.get("/api/v1/billing", headers=owner["headers"])).json()
    assert state["usage"]["connections"] == {"used": 2, "limit": 1}
    assert any("not synced" in n for n in state["notices"])


async def test_when_the_trial_ends_the_organization_is_read_only(
    api, limited_settings, database, marketplace_sandbox
) -> None:
    owner = await register(api)
    tenant = owner["tenant"]["id"]
    seller = make_seller(marketplace_sandbox, products=2, warehouses=1, seed=505)
    conn = await connect(api, owner["headers"], seller)
    await sync_and_evaluate(limited_settings, tenant, conn["id"])
    ended = utcnow() - timedelta(minutes=1)
    await sql(
        database,
        "UPDATE billing_accounts SET trial_ends_at = $1, access_ends_at = $1 WHERE tenant_id = $2",
        ended,
        uuid.UUID(tenant),
    )
    h = owner["headers"]
    for method, path, body in (
        ("POST", "/api/v1/api-keys", {"name": "late"}),
        ("POST", f"/api/v1/connections/{conn['id']}/syncs", None),
        ("PATCH", f"/api/v1/connections/{conn['id']}", {"name": "renamed"}),
        ("PUT", "/api/v1/alert-rules/default", {"enabled": True, "units_below": 3}),
    ):
        resp = await api.request(method, path, json=body, headers=h)
        assert resp.status_code == 402, (path, resp.text)
        assert resp.json()["code"] == "payment_required" and "trial has ended" in resp.json()["detail"]
    # Data kept and readable; the schedule skips it.
    assert (await api.get("/api/v1/products", headers=h)).json()["items"]
    assert (await api.get(f"/api/v1/connections/{conn['id']}", headers=h)).json()["name"] == "Shop"
    await sql(database, "UPDATE connections SET last_scheduled_slot = 0 WHERE tenant_id = $1", uuid.UUID(tenant))
    assert await scheduled(limited_settings, tenant) == {conn["id"]: False}
    state = (await api.get("/api/v1/billing", headers=h)).json()
    assert (state["status"], state["read_only"]) == ("canceled", True)
    # What it takes to pay is not refused by the guard (here Stripe is unreachable: 503, not 402).
    pay = await api.post("/api/v1/billing/checkout", json={"plan": "starter"}, headers=h)
    assert pay.status_code == 503 and pay.json()["code"] == "billing_unavailable", pay.text
    await drain(limited_settings)


async def test_without_stripe_keys_billing_is_off(client) -> None:
    """The suite's own app has no Stripe key: every organization is self-hosted and nothing calls Stripe."""
    owner = await register(client)
    h = owner["headers"]
    state = (await client.get("/api/v1/billing", headers=h)).json()
    assert (state["billing_enabled"], state["status"], state["plan"]) == (False, "self_hosted", "self_hosted")
    assert state["usage"]["connections"]["limit"] == 100 and state["read_only"] is False
    plans = (await client.get("/api/v1/billing/plans")).json()
    assert plans["billing_enabled"] is False and [p["code"] for p in plans["items"]] == ["self_hosted"]
    for path, body in (
        ("/api/v1/billing/checkout", {"plan": "pro"}),
        ("/api/v1/billing/portal", None),
        ("/api/v1/billing/change", {"plan": "pro"}),
        ("/api/v1/billing/cancel", {"at_period_end": True}),
        ("/api/v1/billing/resume", None),
    ):
        resp = await client.post(path, json=body, headers=h)
        assert resp.status_code == 409 and resp.json()["code"] == "billing_disabled", (path, resp.text)
    assert (await client.get("/api/v1/billing/usage", headers=h)).json()["code"] == "billing_disabled"
    hook = await client.post(
        "/api/v1/billing/stripe/webhook", content=b"{}", headers={"Content-Type": "application/json"}
    )
    assert hook.status_code == 409 and hook.json()["code"] == "billing_disabled"
    assert client.app.state.stripe is None


async def test_plans_are_public_and_cacheable(api) -> None:
    resp = await api.get("/api/v1/billing/plans")
    assert resp.status_code == 200 and "max-age=300" in resp.headers["cache-control"]
    plans = {p["code"]: p for p in resp.json()["items"]}
    assert list(plans) == ["trial", "starter", "pro", "enterprise"]
    assert plans["pro"]["price_usd_cents"] == 2990 and plans["pro"]["limits"]["products"] == 1000
    assert plans["starter"]["limits"]["webhook_endpoints"] == 0 and not plans["trial"]["purchasable"]


async def test_only_an_owner_manages_the_subscription(api) -> None:
    from tests.helpers import add_member

    owner = await register(api)
    admin = await add_member(api, owner, role="admin")
    resp = await api.post("/api/v1/billing/checkout", json={"plan": "pro"}, headers=admin["member_headers"])
    assert resp.status_code == 403 and resp.json()["code"] == "forbidden"
    assert (await api.get("/api/v1/billing", headers=admin["member_headers"])).status_code == 200
    bad = await api.post("/api/v1/billing/checkout", json={"plan": "platinum"}, headers=owner["headers"])
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "plan"
