"""The tenant-versioned response cache: hits, ETag / 304, invalidation by version bump (never a stale page),
tenant isolation, and metrics."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from app.lib.cache_version import bump_tenant_cache_version, version_key
from tests.conftest import METRICS_HEADERS, _asyncpg_kwargs
from tests.helpers import register
from tests.sync_support import connect, make_seller, sync_now


@pytest.fixture
async def synced(client, settings, marketplace_sandbox):
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "wildberries", products=6, warehouses=1, seed=23)
    conn = await connect(client, owner["headers"], seller)
    run = await sync_now(client, settings, owner["headers"], conn["id"])
    assert run["status"] == "succeeded", run
    yield owner
    seller.delete()


async def rename_product(database, product_id: str, title: str) -> None:
    """Change the catalogue behind the API's back (as a sync would)."""
    conn = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    try:
        await conn.execute("UPDATE products SET title = $1 WHERE id = $2", title, uuid.UUID(product_id))
    finally:
        await conn.close()


async def test_hot_reads_are_cached_with_an_etag(client, synced):
    h = synced["headers"]
    for path in ("/api/v1/products?limit=3", "/api/v1/stock/summary"):
        first = await client.get(path, headers=h)
        assert first.status_code == 200 and first.headers["x-cache"] == "miss"
        second = await client.get(path, headers=h)
        assert second.headers["x-cache"] == "hit"
        assert second.content == first.content and second.headers["etag"] == first.headers["etag"]
        assert second.headers["content-type"].startswith("application/json")
        assert second.headers["cache-control"] == "private, no-cache"
        assert "ratelimit" in second.headers and second.headers["x-content-type-options"] == "nosniff"
    product = (await client.get("/api/v1/products?limit=1", headers=h)).json()["items"][0]
    detail = await client.get(f"/api/v1/products/{product['id']}", headers=h)
    assert detail.headers["x-cache"] == "miss"
    assert (await client.get(f"/api/v1/products/{product['id']}", headers=h)).headers["x-cache"] == "hit"
    # Different queries are different pages; errors are never cached.
    assert (await client.get("/api/v1/products?limit=2", headers=h)).headers["x-cache"] == "miss"
    missing = f"/api/v1/products/{uuid.uuid4()}"
    assert (await client.get(missing, headers=h)).status_code == 404
    assert (await client.get(missing, headers=h)).status_code == 404


async def test_if_none_match_gives_304(client, synced):
    h = synced["headers"]
    first = await client.get("/api/v1/products", headers=h)
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    for value in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        resp = await client.get("/api/v1/products", headers={**h, "If-None-Match": value})
        assert resp.status_code == 304, value
        assert resp.content == b"" and resp.headers["etag"] == etag and "ratelimit" in resp.headers
    changed = await client.get("/api/v1/products", headers={**h, "If-None-Match": '"something-else"'})
    assert changed.status_code == 200 and changed.content == first.content


async def test_a_bumped_version_never_serves_a_stale_page(client, synced, database, redis):
    h = synced["headers"]
    tenant = synced["tenant"]["id"]
    page = await client.get("/api/v1/products?limit=50", headers=h)
    product = page.json()["items"][0]
    detail = (await client.get(f"/api/v1/products/{product['id']}", headers=h)).json()
    await rename_product(database, product["id"], "Renamed by a sync")
    # Until the data's owner says it changed, the cached page stands (that is the point of a cache)...
    assert (await client.get("/api/v1/products?limit=50", headers=h)).content == page.content
    await bump_tenant_cache_version(redis, tenant)
    # ...and after, no page built before the change is served: list and detail both show it.
    fresh = await client.get("/api/v1/products?limit=50", headers=h)
    assert fresh.headers["x-cache"] == "miss" and fresh.headers["etag"] != page.headers["etag"]
    assert {i["title"] for i in fresh.json()["items"] if i["id"] == product["id"]} == {"Renamed by a sync"}
    again = (await client.get(f"/api/v1/products/{product['id']}", headers=h)).json()
    assert again["title"] == "Renamed by a sync" and again["variants"] == detail["variants"]
    # An old ETag no longer matches.
    resp = await client.get("/api/v1/products?limit=50", headers={**h, "If-None-Match": page.headers["etag"]})
    assert resp.status_code == 200


async def test_a_client_can_ask_for_the_origin(client, synced, database):
    h = synced["headers"]
    product = (await client.get("/api/v1/products?limit=5", headers=h)).json()["items"][0]
    assert (await client.get("/api/v1/products?limit=5", headers=h)).headers["x-cache"] == "hit"
    await rename_product(database, product["id"], "Seen only from the origin")
    origin = await client.get("/api/v1/products?limit=5", headers={**h, "Cache-Control": "no-cache, no-store"})
    assert origin.headers["x-cache"] == "bypass"
    assert any(i["title"] == "Seen only from the origin" for i in origin.json()["items"])
    # no-store left the cached page alone; plain no-cache refreshes it.
    assert (await client.get("/api/v1/products?limit=5", headers=h)).headers["x-cache"] == "hit"
    await client.get("/api/v1/products?limit=5", headers={**h, "Cache-Control": "no-cache"})
    cached = await client.get("/api/v1/products?limit=5", headers=h)
    assert cached.headers["x-cache"] == "hit"
    assert any(i["title"] == "Seen only from the origin" for i in cached.json()["items"])


async def test_a_lost_version_key_does_not_revive_old_pages(client, synced, database, redis):
    h = synced["headers"]
    product = (await client.get("/api/v1/products?limit=5", headers=h)).json()["items"][0]
    await rename_product(database, product["id"], "Changed while Redis forgot")
    await redis.delete(version_key(synced["tenant"]["id"]))  # evicted, flushed, failed over
    resp = await client.get("/api/v1/products?limit=5", headers=h)
    assert resp.headers["x-cache"] == "miss"
    assert any(i["title"] == "Changed while Redis forgot" for i in resp.json()["items"])


async def test_a_write_through_the_api_invalidates_the_tenants_pages(client, synced):
    h = synced["headers"]
    await client.get("/api/v1/stock/summary", headers=h)
    assert (await client.get("/api/v1/stock/summary", headers=h)).headers["x-cache"] == "hit"
    created = await client.post("/api/v1/api-keys", json={"name": "any write"}, headers=h)
    assert created.status_code == 201
    assert (await client.get("/api/v1/stock/summary", headers=h)).headers["x-cache"] == "miss"


async def test_pages_are_per_tenant(client, synced):
    other = await register(client, "Other")
    mine = await client.get("/api/v1/products", headers=synced["headers"])
    theirs = await client.get("/api/v1/products", headers=other["headers"])
    assert mine.json()["items"] and theirs.json()["items"] == []
    assert theirs.headers["x-cache"] == "miss"


async def test_hits_and_misses_are_metrics(client, synced):
    await client.get("/api/v1/stock/summary", headers=synced["headers"])
    await client.get("/api/v1/stock/summary", headers=synced["headers"])
    text = (await client.get("/metrics", headers=METRICS_HEADERS)).text
    lines = [line for line in text.splitlines() if line.startswith("stock_tracker_cache_requests_total")]
    assert any('outcome="hit"' in line and 'cache="stock.summary"' in line for line in lines)
    assert any('outcome="miss"' in line for line in lines)
    assert synced["tenant"]["id"] not in text


async def test_a_cached_read_is_one_redis_round_trip(client, synced, redis_url):
    """Rate limits, usage and the cache version travel in one script call (app/server/gate.py); a process
    that holds a copy of the entry sends nothing else, and one that does not adds the entry's GET to the same
    write. Watched from outside with MONITOR, which lists each command a client sends (commands run by
    scripts are marked)."""
    from redis.asyncio import Redis

    from app.server.cache import LOCAL

    h = synced["headers"]
    path = "/api/v1/products?limit=4"
    # Exact mode (no token leases: every request its own gate call); leases have their own test
    # (tests/integration/server/test_token_leases.py).
    client.app.state.leases.max_tokens = 1
    assert (await client.get(path, headers=h)).headers["x-cache"] == "miss"
    seen: list[dict] = []
    watcher = Redis.from_url(redis_url)
    async with watcher.monitor() as monitor:

        async def collect() -> None:
            while True:
                seen.append(await monitor.next_command())

        task = asyncio.create_task(collect())
        for _ in range(3):
            resp = await client.get(path, headers=h)
            assert resp.status_code == 200 and resp.headers["x-cache"] == "hit"
        LOCAL._entries.clear()  # as in another API process, which never built this page
        LOCAL.size = 0
        for _ in range(2):
            resp = await client.get(path, headers=h)
            assert resp.status_code == 200 and resp.headers["x-cache"] == "hit"
        await asyncio.sleep(0.3)
        task.cancel()
    await watcher.aclose()
    # MONITOR sees the whole server: keep this suite's database (other suites may share the server).
    db = Redis.from_url(redis_url).connection_pool.connection_kwargs.get("db", 0)
    sent = [c for c in seen if c.get("client_type") != "lua" and c.get("db") == db]
    # Per request: the gate script alone while this process has its copy; then, without one, the entry's GET
    # written with the script (one round trip), after which the copy is kept again.
    commands = [c["command"].split()[0].upper() for c in sent]
    assert commands == ["EVALSHA"] * 3 + ["GET", "EVALSHA", "EVALSHA"], sent


async def test_a_process_copy_is_never_served_after_a_bump(client, synced, database, redis):
    """The process's own copy obeys the version exactly as Redis's entry does."""
    from app.server.cache import LOCAL

    h = synced["headers"]
    path = "/api/v1/products?limit=7"
    page = await client.get(path, headers=h)
    assert (await client.get(path, headers=h)).headers["x-cache"] == "hit" and LOCAL.size > 0
    product = page.json()["items"][0]
    await rename_product(database, product["id"], "Renamed while a copy was held")
    await bump_tenant_cache_version(redis, synced["tenant"]["id"])
    fresh = await client.get(path, headers=h)
    assert fresh.headers["x-cache"] == "miss"
    assert any(i["title"] == "Renamed while a copy was held" for i in fresh.json()["items"])
    assert (await client.get(path, headers=h)).content == fresh.content


async def test_a_cached_read_survives_a_flushed_script_cache(client, synced, redis):
    """After a Redis restart or SCRIPT FLUSH the gate's EVALSHA is refused (NOSCRIPT): the request is still
    checked and served from the cache (a hit needs the version the script returns), and the script is loaded
    again, so the next read is one round trip again."""
    from app.server.gate import _GATE

    h = synced["headers"]
    path = "/api/v1/products?limit=3"
    assert (await client.get(path, headers=h)).headers["x-cache"] == "miss"
    await redis.script_flush()  # server-wide: other clients of this Redis fall back to EVAL once, too
    resp = await client.get(path, headers=h)
    assert resp.status_code == 200 and resp.headers["x-cache"] == "hit" and "ratelimit" in resp.headers
    assert await redis.script_exists(_GATE.sha) == [True]
