"""Inbound rate limiting: plan windows per caller and per tenant, IETF and X- headers, 429 problems, the
login / sign-up throttles, the Redis-down policy, and no over-admission with 2 API workers."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import structlog
from litestar.testing import AsyncTestClient

from app.config import Settings
from app.domain.apikeys.usage import period_of, usage_key
from app.domain.billing.plans import PLANS
from app.lib.clock import now_seconds, utcnow
from app.lib.ratelimit import Policy, RateLimiter, Window, _counter_name
from app.server.app import create_app
from app.server.ratelimit import AuthThrottle, plan_limits, this_month
from tests.conftest import METRICS_HEADERS, _asyncpg_kwargs, make_settings, unique_email
from tests.helpers import PASSWORD, register
from tests.sandbox_server import free_port

PROBLEM = "application/problem+json"
_ITEM = re.compile(r'^"([^"\\]+)"((?:;[a-z][a-z0-9_-]*=-?\d+)*)$')


def parse_sf_list(value: str) -> dict[str, dict[str, int]]:
    """A strict reader for the structured-field lists these headers use: ``"name";k=1;k2=2, ...``."""
    out: dict[str, dict[str, int]] = {}
    for raw in value.split(","):
        match = _ITEM.match(raw.strip())
        assert match, f"not a structured-field item: {raw!r}"
        params = dict(p.split("=") for p in match.group(2).split(";")[1:])
        out[match.group(1)] = {k: int(v) for k, v in params.items()}
    return out


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def set_plan(database: dict[str, str], tenant_id: str, plan: str) -> None:
    conn = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    try:
        await conn.execute("UPDATE tenants SET plan = $1 WHERE id = $2", plan, uuid.UUID(tenant_id))
    finally:
        await conn.close()


@pytest.fixture
async def billed(database, redis_url, settings) -> AsyncIterator[AsyncTestClient[Any]]:
    """An API with billing on, so each tenant's own plan (not the self-hosted one) sets its limits."""
    billed_settings = make_settings(
        database, redis_url, stripe_secret_key="sk_test_limits", wb_base_url=settings.wb_base_url
    )
    async with AsyncTestClient(app=create_app(billed_settings), base_url="http://testserver.local") as c:
        yield c


async def starter_tenant(client, database) -> dict[str, Any]:
    owner = await register(client)
    await set_plan(database, owner["tenant"]["id"], "starter")
    resp = await client.post("/api/v1/api-keys", json={"name": "ci"}, headers=owner["headers"])
    assert resp.status_code == 201, resp.text
    owner["key"] = resp.json()["key"]
    owner["key_id"] = resp.json()["id"]
    return owner


async def test_user_responses_carry_the_plan_windows(client, account):
    resp = await client.get("/api/v1/products", headers=account["headers"])
    assert resp.status_code == 200
    plan = PLANS["self_hosted"]  # billing is off in tests: every tenant has the self-hosted limits
    windows = {w.name: w for w in plan.rate_limits}
    policy = parse_sf_list(resp.headers["ratelimit-policy"])
    assert policy == {n: {"q": windows[n].limit, "w": windows[n].seconds} for n in ("burst", "minute")}
    state = parse_sf_list(resp.headers["ratelimit"])
    assert set(state) == {"burst", "minute"}
    assert state["minute"]["r"] < windows["minute"].limit and state["minute"]["t"] >= 0
    assert int(resp.headers["x-ratelimit-limit"]) in (windows["burst"].limit, windows["minute"].limit)
    assert 0 <= int(resp.headers["x-ratelimit-remaining"]) < int(resp.headers["x-ratelimit-limit"])
    assert int(resp.headers["x-ratelimit-reset"]) >= 0
    # Errors of authenticated requests carry them too; unauthenticated ones do not.
    missing = await client.get(f"/api/v1/products/{uuid.uuid4()}", headers=account["headers"])
    assert missing.status_code == 404 and "ratelimit" in missing.headers
    assert "ratelimit" not in (await client.get("/health/live")).headers


async def test_key_responses_add_the_tenant_month_quota(billed, database):
    owner = await starter_tenant(billed, database)
    resp = await billed.get("/api/v1/products", headers=bearer(owner["key"]))
    assert resp.status_code == 200
    policy = parse_sf_list(resp.headers["ratelimit-policy"])
    month = this_month(now_seconds()).window(1000, 1, now_seconds())  # the calendar month (UTC): 28 to 31 days
    assert policy == {
        "burst": {"q": 10, "w": 1},
        "minute": {"q": 120, "w": 60},
        "month": {"q": 1000, "w": int(month.seconds)},
    }
    state = parse_sf_list(resp.headers["ratelimit"])
    assert state["month"]["r"] == 999 and state["minute"]["r"] == 119 and state["burst"]["r"] == 9
    assert 0 < state["month"]["t"] <= month.seconds


async def test_over_the_limit_is_a_429_problem_whose_retry_after_works(billed, database):
    owner = await starter_tenant(billed, database)
    statuses: list[int] = []
    refused = None
    # The minute window (120) guarantees a refusal within 121 calls, however slowly they run.
    for _ in range(130):
        resp = await billed.get("/api/v1/stock/summary", headers=bearer(owner["key"]))
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            refused = resp
            break
    assert refused is not None and set(statuses[:-1]) == {200}
    assert refused.headers["content-type"].startswith(PROBLEM)
    body = refused.json()
    assert body["code"] == "quota_exceeded" and body["status"] == 429
    retry_after = int(refused.headers["retry-after"])
    assert retry_after >= 1
    assert retry_after >= int(refused.headers["x-ratelimit-reset"])
    assert refused.headers["x-ratelimit-remaining"] == "0"
    refusing = [n for n, p in parse_sf_list(refused.headers["ratelimit"]).items() if p["r"] == 0]
    assert refusing and all(parse_sf_list(refused.headers["ratelimit"])[n]["t"] <= retry_after for n in refusing)
    # A client that waits as told is admitted again.
    await asyncio.sleep(retry_after)
    assert (await billed.get("/api/v1/stock/summary", headers=bearer(owner["key"]))).status_code == 200


async def test_the_monthly_quota_refuses_and_refused_calls_are_not_billed(billed, database, redis):
    owner = await starter_tenant(billed, database)
    tenant = owner["tenant"]["id"]
    await redis.set(usage_key(tenant, period_of(utcnow())), 998)  # 998 calls made this month already
    assert (await billed.get("/api/v1/products", headers=bearer(owner["key"]))).status_code == 200
    last = await billed.get("/api/v1/products", headers=bearer(owner["key"]))
    assert last.status_code == 200 and parse_sf_list(last.headers["ratelimit"])["month"]["r"] == 0
    refused = await billed.get("/api/v1/products", headers=bearer(owner["key"]))
    assert refused.status_code == 429 and refused.json()["code"] == "quota_exceeded"
    assert "monthly" in refused.json()["detail"]
    assert parse_sf_list(refused.headers["ratelimit"])["month"]["r"] == 0
    # Retry when the month starts over.
    at = now_seconds()
    assert abs(int(refused.headers["retry-after"]) - this_month(at).window(1000, 1000, at).reset_seconds) < 5
    usage = (await billed.get("/api/v1/api-keys/usage", headers=owner["headers"])).json()
    assert usage["api_calls"] == 1000 and usage["quota"] == 1000 and usage["plan"] == "starter"
    # The dashboard (a signed-in user) is not held to the API-call quota.
    assert (await billed.get("/api/v1/products", headers=owner["headers"])).status_code == 200


async def test_each_key_and_each_user_has_its_own_budget(billed, database, redis):
    owner = await starter_tenant(billed, database)
    limiter = RateLimiter(redis, prefix="rl:api")
    caller = plan_limits(PLANS["starter"]).caller
    await limiter.charge(f"k:{owner['key_id']}", caller, 120)
    assert (await billed.get("/api/v1/products", headers=bearer(owner["key"]))).status_code == 429
    assert (await billed.get("/api/v1/products", headers=owner["headers"])).status_code == 200
    second = await billed.post("/api/v1/api-keys", json={"name": "second"}, headers=owner["headers"])
    assert (await billed.get("/api/v1/products", headers=bearer(second.json()["key"]))).status_code == 200


async def test_login_is_throttled_per_email_and_address(settings):
    """Attempts on one account from one address are limited (counted on attempts, not only failures)."""
    run = uuid.uuid4().hex[:8]
    throttle = AuthThrottle(
        login_per_email=Policy(f"login-account-{run}", (Window("minute", 10, 60),)),
        login_per_address=None,
        register_per_email=None,
        register_per_address=None,
    )
    async with AsyncTestClient(app=create_app(settings, auth_throttle=throttle)) as c:
        owner = await register(c)
        statuses = []
        for _ in range(11):
            resp = await c.post("/api/v1/auth/login", json={"email": owner["email"], "password": "wrong password"})
            statuses.append(resp.status_code)
        assert statuses == [401] * 10 + [429]
        assert int(resp.headers["retry-after"]) >= 1 and resp.json()["code"] == "quota_exceeded"
        # Even the right password waits: the throttle is on attempts, and the address is normalised first.
        blocked = await c.post("/api/v1/auth/login", json={"email": owner["email"].upper(), "password": PASSWORD})
        assert blocked.status_code == 429
        # Another account from the same address is not affected (in test mode the per-address limit is off).
        other = await register(c)
        assert (
            await c.post("/api/v1/auth/login", json={"email": other["email"], "password": PASSWORD})
        ).status_code == 200


async def test_login_and_signup_are_throttled_per_client_address(settings):
    run = uuid.uuid4().hex[:8]  # fresh counters: every test request comes from the same address
    throttle = AuthThrottle(
        login_per_email=None,
        login_per_address=Policy(f"login-address-{run}", (Window("minute", 3, 60),)),
        register_per_email=None,
        register_per_address=Policy(f"register-address-{run}", (Window("minute", 2, 60),)),
    )
    app = create_app(settings, auth_throttle=throttle)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as c:
        logins = [
            (await c.post("/api/v1/auth/login", json={"email": unique_email(), "password": "x" * 8})).status_code
            for _ in range(4)
        ]
        assert logins[:3] == [401, 401, 401] and logins[3] == 429
        body = {"password": PASSWORD, "organization_name": "Org"}
        signups = [
            (await c.post("/api/v1/auth/register", json={**body, "email": unique_email()})).status_code
            for _ in range(3)
        ]
        assert signups == [201, 201, 429]


async def test_the_auth_throttle_leaves_the_body_and_its_limits_intact(client):
    resp = await client.post(
        "/api/v1/auth/login", content=b'{"email": "a@b.c", "password": ', headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400 and resp.json()["code"] == "malformed_json"
    big = b'{"email": "' + b"a" * (1024 * 1024 + 10) + b'"}'
    resp = await client.post("/api/v1/auth/login", content=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413


@pytest.mark.parametrize("fail_open", [True, False])
async def test_redis_down_follows_the_configured_policy(client, database, fail_open):
    owner = await register(client)  # a real member: without Redis the database vouches for the token
    settings = make_settings(database, "redis://127.0.0.1:1/0", rate_limit_fail_open=fail_open)
    app = create_app(settings)
    with structlog.testing.capture_logs() as logs:
        async with AsyncTestClient(app=app) as c:
            resp = await c.get("/api/v1/stock/summary", headers=owner["headers"])
            metrics = (await c.get("/metrics", headers=METRICS_HEADERS)).text
    if fail_open:
        assert resp.status_code == 200, resp.text
        minute = next(w for w in PLANS["self_hosted"].rate_limits if w.name == "minute")
        assert parse_sf_list(resp.headers["ratelimit"])["minute"]["r"] == minute.limit  # nothing counted
    else:
        assert resp.status_code == 503 and resp.json()["code"] == "rate_limiter_unavailable"
    assert "stock_tracker_rate_limiter_unavailable_total" in metrics
    assert any(e["event"] == "ratelimit.unavailable" and e["fail_open"] is fail_open for e in logs)


async def test_limiting_can_be_switched_off(database, redis_url):
    app = create_app(make_settings(database, redis_url, rate_limit_enabled=False))
    async with AsyncTestClient(app=app) as c:
        owner = await register(c)
        resp = await c.get("/api/v1/products", headers=owner["headers"])
        assert resp.status_code == 200 and "ratelimit" not in resp.headers
        # Without the limiter the cache and the usage count still work (on their own Redis calls).
        created = (await c.post("/api/v1/api-keys", json={"name": "off"}, headers=owner["headers"])).json()
        key = {"Authorization": f"Bearer {created['key']}"}
        assert (await c.get("/api/v1/products", headers=key)).headers["x-cache"] == "miss"  # the POST bumped it
        assert (await c.get("/api/v1/products", headers=key)).headers["x-cache"] == "hit"
        usage = (await c.get("/api/v1/api-keys/usage", headers=key)).json()
        assert usage["api_calls"] == 3


# ---- two API worker processes, 200 concurrent requests on one key -----------------------------------------


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCK_TRACKER_")}
    for name, value in msgspec.structs.asdict(settings).items():
        env[f"STOCK_TRACKER_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    env["STOCK_TRACKER_STRIPE_SECRET_KEY"] = "sk_test_limits"  # billing on: the tenant's own plan applies
    return env


@pytest.fixture
def api_two_workers(settings) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "api", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        env=_env(settings),
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def test_two_workers_never_admit_more_than_the_policy(client, database, api_two_workers, redis):
    owner = await starter_tenant(client, database)
    caller = plan_limits(PLANS["starter"]).caller
    async with httpx.AsyncClient(base_url=api_two_workers, limits=httpx.Limits(max_connections=200)) as http:
        assert (await http.get("/health/ready")).status_code == 200
        t0 = await redis.time()
        responses = await asyncio.gather(
            *(http.get("/api/v1/products", headers=bearer(owner["key"]), timeout=60) for _ in range(200))
        )
        t1 = await redis.time()
    statuses = [r.status_code for r in responses]
    admitted = statuses.count(200)
    assert set(statuses) <= {200, 429}, statuses
    elapsed = (t1[0] - t0[0]) + (t1[1] - t0[1]) / 1e6
    # In any interval of length d a (limit L, window W) sliding counter admits at most L + L·d/W
    # (app/lib/ratelimit.py); every window of the policy must hold.
    bound = min(w.limit + w.limit * elapsed / w.seconds for w in caller.windows)
    assert 1 <= admitted <= bound, (admitted, bound, elapsed)
    assert statuses.count(429) == 200 - admitted > 0
    # Every admitted call was counted exactly once, and no fixed window ever went over its limit.
    counter = _counter_name("rl:api", f"k:{owner['key_id']}", "api\x00minute")  # the limiter's key scheme
    minute_keys = [k async for k in redis.scan_iter(f"{counter}:*")]
    counts = [int(v) for v in await redis.mget(minute_keys)]
    assert sum(counts) == admitted and max(counts) <= 120
    usage = (await client.get("/api/v1/api-keys/usage", headers=owner["headers"])).json()
    assert usage["api_calls"] == admitted
