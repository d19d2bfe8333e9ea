"""Token leases (app/server/lease.py): a caller that keeps coming is counted a few requests per gate call, and the
bounds the module's docstring writes down hold — every request counted before it is served, usage exact once
the unused tokens are given back, at most the limiter's bound plus P × (size − 1) admitted across P processes,
headers as one exact call would give, and revocations and cache changes reaching another process's lease at
once (through Redis pub/sub)."""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from app.config import Settings
from app.domain.apikeys.usage import period_of, usage_key
from app.domain.billing.plans import PLANS
from app.lib.cache_version import bump_tenant_cache_version
from app.lib.ratelimit import _counter_name
from app.lib.resp import PipelinedRedis
from app.lib.tokens import api_key_revocation, publish_revocations
from app.server.app import create_app
from app.server.lease import WARM, LeaseTable
from app.server.ratelimit import plan_limits
from tests.conftest import METRICS_HEADERS, make_settings
from tests.helpers import PASSWORD, register
from tests.integration.server.test_rate_limit_api import parse_sf_list
from tests.sandbox_server import free_port

SECONDS = 1.0  # the lease time these tests run with (the default)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def new_key(client: Any) -> dict[str, Any]:
    owner = await register(client)
    resp = await client.post("/api/v1/api-keys", json={"name": "lease"}, headers=owner["headers"])
    assert resp.status_code == 201, resp.text
    owner["key"], owner["key_id"] = resp.json()["key"], resp.json()["id"]
    return owner


async def usage_now(redis: Redis, tenant_id: str) -> int:
    from app.lib.clock import utcnow

    return int(await redis.get(usage_key(tenant_id, period_of(utcnow()))) or 0)


async def minute_count(redis: Redis, key_id: str) -> int:
    counter = _counter_name("rl:api", f"k:{key_id}", "api\x00minute")
    keys = [k async for k in redis.scan_iter(f"{counter}:*")]
    return sum(int(v) for v in await redis.mget(keys)) if keys else 0


@pytest.fixture
async def leased(database, redis_url, settings) -> AsyncIterator[AsyncTestClient[Any]]:
    """An API in this process with leases on (the default: 8 tokens, 1 s); self-hosted plan (burst 200)."""
    app = create_app(make_settings(database, redis_url, wb_base_url=settings.wb_base_url))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as c:
        for _ in range(50):  # the event subscription is up (no leases before)
            if app.state.leases.live:
                break
            await asyncio.sleep(0.05)
        assert app.state.leases.live
        yield c


async def test_a_caller_that_keeps_coming_is_counted_ahead_and_usage_is_exact_after_give_back(leased, redis):
    owner = await new_key(leased)
    table: LeaseTable = leased.app.state.leases
    tenant = owner["tenant"]["id"]
    before = await usage_now(redis, tenant)
    month_left, minute_left = [], []
    n = 40
    for _ in range(n):
        resp = await leased.get("/api/v1/stock/summary", headers=bearer(owner["key"]))
        assert resp.status_code == 200, resp.text
        state = parse_sf_list(resp.headers["ratelimit"])
        month_left.append(state["month"]["r"])
        minute_left.append(state["minute"]["r"])
    # Leases were used: fewer gate calls than requests; the first WARM were exact.
    assert table.served >= n // 2 and table.grants >= 1
    # Headers as one exact call per request: each one a unit less than the one before.
    assert [a - b for a, b in itertools.pairwise(month_left)] == [1] * (n - 1)
    assert [a - b for a, b in itertools.pairwise(minute_left)] == [1] * (n - 1)
    # Counted before served: Redis never reads below what was served; ahead by at most size − 1.
    counted = await usage_now(redis, tenant) - before
    assert n <= counted <= n + table.max_tokens - 1
    assert n <= await minute_count(redis, owner["key_id"]) <= n + table.max_tokens - 1
    # After the lease time and a sweep, the unused tokens are back: usage and windows are exact.
    await asyncio.sleep(SECONDS * 1.6)
    assert await usage_now(redis, tenant) - before == n
    assert await minute_count(redis, owner["key_id"]) == n
    assert table.given_back == counted - n


async def test_a_small_plan_is_never_leased(database, redis_url, settings, redis):
    """size ≤ the smallest window's limit ÷ 8: the starter plan's burst of 10 keeps every call exact."""
    billed = make_settings(database, redis_url, stripe_secret_key="sk_test_leases", wb_base_url=settings.wb_base_url)
    app = create_app(billed)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as c:
        owner = await new_key(c)
        from tests.integration.server.test_rate_limit_api import set_plan

        await set_plan(database, owner["tenant"]["id"], "starter")
        before = await usage_now(redis, owner["tenant"]["id"])
        for i in range(9):
            assert (await c.get("/api/v1/stock/summary", headers=bearer(owner["key"]))).status_code == 200
            assert await usage_now(redis, owner["tenant"]["id"]) - before == i + 1  # never ahead
        assert app.state.leases.served == 0


async def test_leases_shrink_near_a_limit_and_never_serve_past_it(leased, redis):
    """A caller near its window is back to one request per call: the limit refuses exactly as without leases."""
    owner = await new_key(leased)
    caller = plan_limits(PLANS["self_hosted"]).caller
    burst = next(w for w in caller.windows if w.name == "burst").limit
    statuses = []
    t0 = await redis.time()
    for _ in range(burst + 20):
        statuses.append((await leased.get("/api/v1/stock/summary", headers=bearer(owner["key"]))).status_code)
        if statuses[-1] == 429:
            break
    t1 = await redis.time()
    # One process never serves more than it counted, so the limiter's own bound holds for what it admitted: in
    # any interval of length d a (limit L, window W) counter admits at most L + L·d/W (app/lib/ratelimit.py).
    elapsed = (t1[0] - t0[0]) + (t1[1] - t0[1]) / 1e6
    assert statuses.count(200) <= min(w.limit + w.limit * elapsed / w.seconds for w in caller.windows)
    counted = await minute_count(redis, owner["key_id"])
    assert counted >= statuses.count(200)  # never served more than counted


async def test_a_revocation_in_this_process_ends_its_leases_at_once(leased):
    owner = await new_key(leased)
    table: LeaseTable = leased.app.state.leases
    for _ in range(WARM + 8):
        assert (await leased.get("/api/v1/stock/summary", headers=bearer(owner["key"]))).status_code == 200
    assert table.served > 0
    resp = await leased.delete(f"/api/v1/api-keys/{owner['key_id']}", headers=owner["headers"])
    assert resp.status_code in (200, 204), resp.text
    refused = await leased.get("/api/v1/stock/summary", headers=bearer(owner["key"]))
    assert refused.status_code == 401


async def test_a_lease_serves_only_the_token_it_was_granted_for(leased):
    """One user, two login sessions: the second was logged out before the first's lease was granted. The lease
    checked the first session only, so a request with the logged-out token is not served from it."""
    owner = await register(leased)
    email = owner["email"]
    second = await leased.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert second.status_code == 200
    second_headers = {"Authorization": f"Bearer {second.json()['access_token']}"}
    out = await leased.post("/api/v1/auth/logout", json={"refresh_token": second.json()["refresh_token"]})
    assert out.status_code == 204
    table: LeaseTable = leased.app.state.leases
    for _ in range(WARM + 8):
        assert (await leased.get("/api/v1/stock/summary", headers=owner["headers"])).status_code == 200
    caller = next(iter(table._leases.values()))
    assert caller.tokens > 0 or table.served > 0
    if caller.tokens == 0:  # make sure the first session's lease holds tokens now
        for _ in range(3):
            await leased.get("/api/v1/stock/summary", headers=owner["headers"])
    assert any(lease.tokens > 0 for lease in table._leases.values())
    refused = await leased.get("/api/v1/stock/summary", headers=second_headers)
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"


async def lease_series(client: Any) -> dict[str, float]:
    text = (await client.get("/metrics", headers=METRICS_HEADERS)).text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("stock_tracker_rate_limit_lease_")
    }


async def test_the_leases_counters_are_served_as_metrics(leased):
    """What the leases did shows in /metrics (the dashboard's limiter panel reads served and given back)."""
    owner = await new_key(leased)
    table: LeaseTable = leased.app.state.leases
    gone = LeaseTable(8, SECONDS)  # a table that served and is then collected (another app of this process)
    gone.counts.served += 5
    before, counts = await lease_series(leased), (table.served, table.grants, table.given_back)
    del gone
    gc.collect()  # the process's totals are counters: they keep what a collected table counted
    for _ in range(30):
        assert (await leased.get("/api/v1/stock/summary", headers=bearer(owner["key"]))).status_code == 200
    held = (await lease_series(leased))["stock_tracker_rate_limit_lease_tokens_held"]
    assert held == table.held() and held >= 0
    await asyncio.sleep(SECONDS * 1.6)  # the lease ends unused; its tokens go back
    after = await lease_series(leased)
    delta = {name: after[name] - before.get(name, 0.0) for name in after}
    # Other apps of this test process are idle, so the process-wide totals moved by this table's counts only.
    assert delta["stock_tracker_rate_limit_lease_served_total"] == table.served - counts[0] > 0
    assert delta["stock_tracker_rate_limit_lease_grants_total"] == table.grants - counts[1] > 0
    assert delta["stock_tracker_rate_limit_lease_tokens_returned_total"] == table.given_back - counts[2]
    assert after["stock_tracker_rate_limit_lease_tokens_held"] == 0
    assert delta["stock_tracker_rate_limit_lease_tokens_lost_total"] == 0


async def test_a_give_back_redis_refuses_is_counted_lost_and_the_others_apply(redis, redis_url):
    """A give-back the server refuses (a script error) is not retried forever nor does it hold back the others
    of the same write; it is counted as lost (usage stays ahead by it, never behind)."""
    prefix = f"lease-test:{uuid.uuid4().hex}"
    width = 60_000_000
    await redis.set(f"{prefix}:w1:0", 10)
    await redis.set(f"{prefix}:u1", 10)
    await redis.set(f"{prefix}:w2:0", 10)
    await redis.hset(f"{prefix}:u2", "not", "a counter")  # GET on a hash: WRONGTYPE inside the script
    table = LeaseTable(8, SECONDS)
    table._returns += [
        (3, 5, [f"{prefix}:w1"], [width], f"{prefix}:u1"),
        (2, 5, [f"{prefix}:w2"], [width], f"{prefix}:u2"),
    ]
    client = PipelinedRedis(redis_url)
    try:
        assert await table.give_back(client) == 3
        assert (table.given_back, table.lost, table.held()) == (3, 2, 0)
        assert int(await redis.get(f"{prefix}:w1:0")) == 7 and int(await redis.get(f"{prefix}:u1")) == 7
        assert await table.give_back(client) == 0  # nothing re-queued
    finally:
        await client.aclose()


# ---- another API process: events reach its leases through Redis -----------------------------------------------


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCK_TRACKER_")}
    for name, value in msgspec.structs.asdict(settings).items():
        env[f"STOCK_TRACKER_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _start_api(settings: Settings, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=_env(settings),
        cwd=Path(__file__).resolve().parents[3],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the API did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def other_api(settings) -> Iterator[str]:
    proc, base = _start_api(settings, 1)
    try:
        yield base
    finally:
        _stop(proc)


@pytest.fixture
def two_workers(settings) -> Iterator[str]:
    proc, base = _start_api(settings, 2)
    try:
        yield base
    finally:
        _stop(proc)


async def _warm_lease(http: httpx.AsyncClient, key: str, redis: Redis, tenant: str, path: str) -> httpx.Response:
    """Requests until the other process holds a lease with tokens left (seen from outside: usage counted ahead
    of the requests served); the last response."""
    before = await usage_now(redis, tenant)
    for made in range(1, 40):
        resp = await http.get(path, headers=bearer(key))
        assert resp.status_code == 200
        if await usage_now(redis, tenant) - before > made:
            return resp
    raise AssertionError("the other process never leased")


async def _dropped(http: httpx.AsyncClient) -> float:
    """The other process's count of leases an event ended (its /metrics)."""
    return (await lease_series(http))["stock_tracker_rate_limit_lease_dropped_total"]


async def _event_reached(http: httpx.AsyncClient, before: float) -> None:
    """Until the other process has ended a lease on the event. Redis writes the event to subscribers in the
    same pass as it answers the publishing call, so it is normally there before the client's next request;
    on a loaded machine it can land a moment after (seen once in a full CI run: the request, read first, was
    served from the lease) — the bound for that case is the lease time (docs/api-platform.md)."""
    for _ in range(100):
        if await _dropped(http) > before:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the event never ended the other process's lease")


async def test_a_revocation_reaches_another_process_lease_at_once(client, redis, other_api):
    """Revoked by a third party (not through an API write, which would also bump the tenant's cache version and
    drop its leases that way): only the revocation's own event can end the other process's lease."""
    owner = await new_key(client)
    tenant = owner["tenant"]["id"]
    async with httpx.AsyncClient(base_url=other_api) as http:
        await _warm_lease(http, owner["key"], redis, tenant, "/api/v1/stock/summary")
        before = await _dropped(http)
        await publish_revocations(redis, [api_key_revocation(uuid.UUID(owner["key_id"]))])
        await _event_reached(http, before)
        refused = await http.get("/api/v1/stock/summary", headers=bearer(owner["key"]))
        assert refused.status_code == 401, refused.text


async def test_a_new_cache_version_reaches_another_process_lease_at_once(client, redis, other_api):
    owner = await new_key(client)
    tenant = owner["tenant"]["id"]
    path = "/api/v1/products?limit=3"
    async with httpx.AsyncClient(base_url=other_api) as http:
        etag = (await _warm_lease(http, owner["key"], redis, tenant, path)).headers["etag"]
        before = await _dropped(http)
        await bump_tenant_cache_version(redis, tenant)  # as the worker does after a sync
        await _event_reached(http, before)
        after = await http.get(path, headers=bearer(owner["key"]))
        assert after.status_code == 200
        assert after.headers["x-cache"] == "miss"  # built under the new version, not the lease's old one
        assert after.headers["etag"] == etag  # (the data did not change: the same page, rebuilt)


async def test_two_processes_admit_within_the_bound_and_count_every_call_once(client, redis, two_workers):
    """Concurrent load on one key through 2 processes that lease: at most the limiter's bound plus
    2 × (size − 1) admitted, and once the leases are given back the windows and the usage hold exactly the
    admitted calls."""
    owner = await new_key(client)
    tenant = owner["tenant"]["id"]
    caller = plan_limits(PLANS["self_hosted"]).caller
    max_size = min(8, min(w.limit for w in caller.windows) // 8)
    before = await usage_now(redis, tenant)
    async with httpx.AsyncClient(base_url=two_workers, limits=httpx.Limits(max_connections=16)) as http:

        async def runner(n: int) -> list[int]:
            out = []
            for _ in range(n):
                r = await http.get("/api/v1/stock/summary", headers=bearer(owner["key"]), timeout=30)
                out.append(r.status_code)
            return out

        t0 = await redis.time()
        results = await asyncio.gather(*(runner(60) for _ in range(8)))
        t1 = await redis.time()
    statuses = [s for r in results for s in r]
    admitted = statuses.count(200)
    assert set(statuses) <= {200, 429}, statuses
    elapsed = (t1[0] - t0[0]) + (t1[1] - t0[1]) / 1e6 + SECONDS  # a token may be served a lease time late
    bound = min(w.limit + w.limit * elapsed / w.seconds for w in caller.windows) + 2 * (max_size - 1)
    assert 1 <= admitted <= bound, (admitted, bound, elapsed)
    ahead = await usage_now(redis, tenant) - before
    assert ahead >= admitted  # counted before served
    await asyncio.sleep(SECONDS * 1.6)  # the leases end and their unused tokens go back
    assert await usage_now(redis, tenant) - before == admitted
    assert await minute_count(redis, owner["key_id"]) == admitted
