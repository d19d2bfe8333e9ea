"""Sync under failure: failed pages, crashes, marketplace limits and 429s, credentials at rest, isolation."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid

import httpx
import pytest
from sqlalchemy import func, select, text

from app.config import Settings
from app.db.engine import create_engine, create_sessionmaker, session_scope
from app.db.models import Connection, StockHistory, SyncStatus
from app.domain.connections.gateway import MarketplaceGateway
from app.domain.sync.jobs import MAX_TRIES, sync_connection
from app.domain.sync.scheduler import fan_out
from app.domain.sync.services import SyncService
from app.integrations.marketplace import Retry as HttpRetry
from app.lib.crypto import CredentialCipher, InvalidToken, new_fernet_key
from app.lib.outbound import marketplace_http_client
from app.lib.ratelimit import RateLimiter
from app.lib.redis import arq_client, redis_client
from tests.fakes import worker_context
from tests.helpers import register
from tests.sync_support import connect, make_seller, our_stock, run_worker, sync_now, truth_map


class QuickGateway(MarketplaceGateway):
    """The production gateway with a one-attempt retry policy, so failure tests do not sit in backoff."""

    def wildberries(self, connection_id, credentials, **kw):  # type: ignore[override]
        return super().wildberries(connection_id, credentials, retry=HttpRetry(attempts=1), **kw)


async def _connection(settings: Settings, tenant_id: str, connection_id: str) -> Connection:
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with session_scope(create_sessionmaker(engine), uuid.UUID(tenant_id)) as s:
            return (await s.execute(select(Connection).where(Connection.id == uuid.UUID(connection_id)))).scalar_one()
    finally:
        await engine.dispose()


async def test_cursor_not_advanced_on_a_failed_page(client, settings, marketplace_sandbox):
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, products=250, warehouses=1, seed=21)
    conn = await connect(client, owner["headers"], seller)
    pages = 0

    async def break_after_first_page(response: httpx.Response) -> None:
        nonlocal pages
        if response.request.url.path.endswith("/content/v2/get/cards/list"):
            pages += 1
            if pages == 1:  # the marketplace starts failing between page 1 and page 2
                seller.faults(error_rate=1.0, status=500, rate_limits="off")

    http = marketplace_http_client()
    http.event_hooks["response"].append(break_after_first_page)
    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    try:
        service = SyncService(sm, QuickGateway(settings, http, None), CredentialCipher(settings.encryption_key_list))
        tid, cid = uuid.UUID(owner["tenant"]["id"]), uuid.UUID(conn["id"])
        with pytest.raises(Exception, match="every stage failed"):
            await service.run(tid, cid, uuid.uuid4(), "manual", None)
        stored = await _connection(settings, owner["tenant"]["id"], conn["id"])
        assert stored.sync_cursor is None  # page 1 arrived, page 2 failed: the cursor stays where it was
        seller.faults(error_rate=0.0, rate_limits="off")
        await service.run(tid, cid, uuid.uuid4(), "manual", None)
        stored = await _connection(settings, owner["tenant"]["id"], conn["id"])
        assert stored.sync_cursor and stored.sync_cursor["cards"]["nmID"]
        assert_matches(await our_stock(client, owner["headers"], conn["id"]), truth_map(seller.truth()))
    finally:
        await http.aclose()
        await engine.dispose()
        seller.delete()


async def test_a_failed_source_is_recorded_failed_and_the_rest_is_written(client, settings, marketplace_sandbox):
    """The orders feed fails; the stock sources answered: the run is partially_failed, the orders step says
    failed with its error, every other step succeeded, the stock is the marketplace's, and only the orders
    cursor stays where it was."""
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, products=30, warehouses=2, seed=23)
    conn = await connect(client, owner["headers"], seller)

    async def orders_fail(request: httpx.Request) -> None:
        if request.url.path.endswith("/api/v1/supplier/orders"):
            seller.faults(error_rate=1.0, status=500, rate_limits="off")

    http = marketplace_http_client()
    http.event_hooks["request"].append(orders_fail)
    engine = create_engine(settings)
    try:
        service = SyncService(
            create_sessionmaker(engine),
            QuickGateway(settings, http, None),
            CredentialCipher(settings.encryption_key_list),
        )
        run_id = uuid.uuid4()
        status = await service.run(uuid.UUID(owner["tenant"]["id"]), uuid.UUID(conn["id"]), run_id, "manual", None)
        assert status is SyncStatus.PARTIALLY_FAILED
        run = (await client.get(f"/api/v1/syncs/{run_id}", headers=owner["headers"])).json()
        stages = run["stages"]
        assert stages["orders"]["status"] == "failed" and "orders" in stages["orders"]["error"]
        assert "write_orders" not in stages  # nothing to write: the orders of before are kept
        assert all(r["status"] == "success" for name, r in stages.items() if name != "orders")
        assert run["error_code"] == "partial" and run["error"].startswith("orders: ")
        stored = await _connection(settings, owner["tenant"]["id"], conn["id"])
        assert stored.sync_cursor and "cards" in stored.sync_cursor and "orders_since" not in stored.sync_cursor
        seller.faults(error_rate=0.0, rate_limits="off")
        assert_matches(await our_stock(client, owner["headers"], conn["id"]), truth_map(seller.truth()))
    finally:
        await http.aclose()
        await engine.dispose()
        seller.delete()


def _recorded_sync_seconds(outcome: str) -> float:
    """The sum of the sync-duration histogram for an outcome, as Prometheus would scrape it."""
    from prometheus_client import REGISTRY

    return sum(
        sample.value
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.name == "stock_tracker_sync_duration_seconds_sum" and sample.labels.get("outcome") == outcome
    )


async def test_a_run_that_gives_up_records_its_real_duration(client, settings, marketplace_sandbox):
    """On the last try of an outage the job ends the run failed; the duration it records is the run's own
    (from its start, as the API shows it), not the moment of the failure, and the failed steps stay recorded."""
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, products=5, warehouses=1, seed=27)
    conn = await connect(client, owner["headers"], seller)
    seller.faults(error_rate=1.0, status=503, latency_ms=150, rate_limits="off")
    before = _recorded_sync_seconds("failed")
    try:
        async with worker_context(settings) as ctx:
            ctx["gateway"] = QuickGateway(settings, ctx["http"], None)
            ctx["job_id"] = f"sync:{conn['id']}:test-give-up"
            ctx["job_try"] = MAX_TRIES
            outcome = await sync_connection(ctx, tenant_id=owner["tenant"]["id"], connection_id=conn["id"])
        assert outcome == "failed"
        runs = (
            await client.get("/api/v1/syncs", params={"connection_id": conn["id"]}, headers=owner["headers"])
        ).json()
        run = runs["items"][0]
        assert run["status"] == "failed" and run["error_code"] == "marketplace_unavailable"
        fetched = {name: r["status"] for name, r in run["stages"].items()}
        assert fetched == dict.fromkeys(("catalogue", "fbo_stock", "fbs_stock", "orders"), "failed")
        assert run["duration_seconds"] >= 0.45  # four sources, each answering 503 after 150 ms
        assert _recorded_sync_seconds("failed") - before == pytest.approx(run["duration_seconds"], abs=0.002)
    finally:
        seller.delete()


def assert_matches(ours: dict, truth: dict) -> None:
    keys = set(ours) | set(truth)
    assert all(ours.get(k, 0) == truth.get(k, 0) for k in keys)


async def test_worker_killed_mid_sync_then_rerun_gives_identical_state(client, settings, marketplace_sandbox, redis):
    """A real worker process is SIGKILLed while a sync is in flight; the job runs again and the state is the
    marketplace's, with no duplicated history."""
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, products=60, warehouses=2, seed=31)
    conn = await connect(client, owner["headers"], seller)
    seller.faults(latency_ms=400, rate_limits="off")  # long enough to kill the worker half-way
    env = {**os.environ, **_env(settings)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "app", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        resp = await client.post(f"/api/v1/connections/{conn['id']}/syncs", headers=owner["headers"])
        run_id = resp.json()["id"]
        for _ in range(200):
            run = (await client.get(f"/api/v1/syncs/{run_id}", headers=owner["headers"])).json()
            if run["status"] == "running":
                break
            await asyncio.sleep(0.05)
        assert run["status"] == "running"
        await asyncio.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    seller.faults(latency_ms=0, rate_limits="off")
    # arq re-runs a job whose worker died once its in-progress key expires (job timeout + 10 s); expire it
    # now instead of waiting, exactly as the timeout would, and drop the dead worker's sync lock likewise.
    await redis.delete(f"arq:in-progress:sync:{conn['id']}:manual:{run_id}", f"lock:sync:{conn['id']}")
    await run_worker(settings)
    run = (await client.get(f"/api/v1/syncs/{run_id}", headers=owner["headers"])).json()
    assert run["status"] == "succeeded" and run["attempts"] == 2
    assert_matches(await our_stock(client, owner["headers"], conn["id"]), truth_map(seller.truth()))
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        async with session_scope(create_sessionmaker(engine), uuid.UUID(owner["tenant"]["id"])) as s:
            points = (await s.execute(select(func.count()).select_from(StockHistory))).scalar_one()
            dupes = (
                await s.execute(
                    text(
                        "SELECT count(*) FROM (SELECT variant_id, warehouse_id, count(*) FROM stock_history "
                        "GROUP BY 1, 2 HAVING count(*) > 1) d"
                    )
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert points == run["counts"]["history_points"] and dupes == 0
    seller.delete()


def _env(settings: Settings) -> dict[str, str]:
    return {
        "STOCK_TRACKER_ENV": "test",
        "STOCK_TRACKER_DATABASE_URL": settings.database_url,
        "STOCK_TRACKER_REDIS_URL": settings.redis_url,
        "STOCK_TRACKER_JWT_SECRET": settings.jwt_secret,
        "STOCK_TRACKER_ENCRYPTION_KEYS": settings.encryption_keys,
        "STOCK_TRACKER_WB_BASE_URL": settings.wb_base_url,
        "STOCK_TRACKER_OZON_BASE_URL": settings.ozon_base_url,
        "STOCK_TRACKER_QUEUE_NAME": settings.queue_name,
        "STOCK_TRACKER_MARKETPLACE_RATE_LIMITS": "false",
        "STOCK_TRACKER_WORKER_METRICS_PORT": "0",
        # Jobs only: its crons would fan out syncs for every connection other tests left in this database.
        "STOCK_TRACKER_WORKER_CRONS": "false",
        "STOCK_TRACKER_LOG_LEVEL": "WARNING",
    }


async def test_large_sync_never_exceeds_the_marketplace_limits(client, settings, marketplace_sandbox):
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, products=1000, warehouses=2, seed=41, rate_limits="real")
    conn = await connect(client, owner["headers"], seller)
    limited = Settings(
        **{**{f: getattr(settings, f) for f in settings.__struct_fields__}, "marketplace_rate_limits": True}
    )
    run = await sync_now(client, limited, owner["headers"], conn["id"])
    assert run["status"] == "succeeded", run
    stats = seller.summary()["stats"]
    assert stats["violations"] == 0, stats
    assert sum(stats["requests"].values()) >= 10  # it really paged (10 card pages and more)
    seller.delete()


async def test_a_real_429_longer_than_the_runs_wait_budget_ends_it_rate_limited(
    client, settings, marketplace_sandbox, redis
):
    """Two connections on one WB account share the marketplace's bucket: the second one's stock report is
    refused with 429 and WB's ``X-Ratelimit-Retry`` (about 20 s). With a wait budget of 5 s the run does not
    sleep it out or go back to the queue: it ends failed/rate_limited at once, the refused step says so, and
    the connection's lease is free."""
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, products=20, warehouses=1, seed=51, rate_limits="real")
    first = await connect(client, owner["headers"], seller, "one")
    second = await connect(client, owner["headers"], seller, "two")
    limited = Settings(
        **{**{f: getattr(settings, f) for f in settings.__struct_fields__}, "marketplace_rate_limits": True}
    )
    run = await sync_now(client, limited, owner["headers"], first["id"])
    assert run["status"] == "succeeded"
    capped = Settings(**{**{f: getattr(limited, f) for f in limited.__struct_fields__}, "sync_max_wait_s": 5})
    engine = create_engine(capped)
    http = marketplace_http_client()
    r = redis_client(capped.redis_url)
    ctx = {
        "settings": capped,
        "sessionmaker": create_sessionmaker(engine),
        "gateway": MarketplaceGateway(capped, http, RateLimiter(r)),
        "cipher": CredentialCipher(capped.encryption_key_list),
        "redis": arq_client(capped.redis_url, capped.queue_name),
        "job_id": f"sync:{second['id']}:test-slot",
        "job_try": 1,
    }
    try:
        assert await sync_connection(ctx, tenant_id=owner["tenant"]["id"], connection_id=second["id"]) == "failed"
        runs = (
            await client.get("/api/v1/syncs", params={"connection_id": second["id"]}, headers=owner["headers"])
        ).json()
        assert runs["items"][0]["status"] == "failed" and runs["items"][0]["error_code"] == "rate_limited"
        assert "pass the cap of 5 s" in runs["items"][0]["error"]
        assert runs["items"][0]["stages"]["fbo_stock"]["status"] == "failed"
        assert "429" in runs["items"][0]["stages"]["fbo_stock"]["error"]
        assert seller.summary()["stats"]["rate_limited"]  # the sandbox really answered 429
        assert not await redis.exists(f"lock:sync:{second['id']}")  # the lease is free
    finally:
        await http.aclose()
        await r.aclose()
        await ctx["redis"].aclose()
        await engine.dispose()
        seller.delete()


async def test_credentials_encrypted_at_rest_and_rotated(client, settings, marketplace_sandbox, database):
    from app.cli.keys import rotate_credentials

    owner = await register(client)
    seller = make_seller(marketplace_sandbox, products=3, warehouses=1, seed=61)
    conn = await connect(client, owner["headers"], seller)
    assert seller.credentials["token"] not in str(conn) and "credentials" not in conn
    listing = await client.get("/api/v1/connections", headers=owner["headers"])
    assert seller.credentials["token"] not in listing.text
    import asyncpg

    from tests.conftest import _asyncpg_kwargs

    db = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    try:
        blob = await db.fetchval("SELECT credentials_encrypted FROM connections WHERE id = $1", uuid.UUID(conn["id"]))
        assert seller.credentials["token"].encode() not in blob
        new_key = new_fernet_key()
        rotated = Settings(
            **{
                **{f: getattr(settings, f) for f in settings.__struct_fields__},
                "encryption_keys": f"{new_key},{settings.encryption_keys}",
            }
        )
        count, failed = await rotate_credentials(rotated)
        assert count >= 1 and uuid.UUID(conn["id"]) not in failed
        blob2 = await db.fetchval("SELECT credentials_encrypted FROM connections WHERE id = $1", uuid.UUID(conn["id"]))
        assert blob2 != blob
        assert seller.credentials["token"] in CredentialCipher([new_key]).decrypt(blob2).decode()
        with pytest.raises(InvalidToken):
            CredentialCipher([settings.encryption_keys]).decrypt(blob2)
    finally:
        await db.close()
        seller.delete()


async def test_cross_tenant_connections_syncs_and_products_are_404(client, settings, marketplace_sandbox):
    a = await register(client, "A")
    b = await register(client, "B")
    seller = make_seller(marketplace_sandbox, products=5, warehouses=1, seed=71)
    conn = await connect(client, a["headers"], seller)
    run = await sync_now(client, settings, a["headers"], conn["id"])
    product = (await client.get("/api/v1/products", headers=a["headers"])).json()["items"][0]
    cid, pid, rid = conn["id"], product["id"], run["id"]
    h = b["headers"]
    for method, path, body in [
        ("GET", f"/api/v1/connections/{cid}", None),
        ("PATCH", f"/api/v1/connections/{cid}", {"name": "x"}),
        ("POST", f"/api/v1/connections/{cid}/check", None),
        ("PUT", f"/api/v1/connections/{cid}/credentials", {"credentials": seller.credentials}),
        ("POST", f"/api/v1/connections/{cid}/syncs", None),
        ("DELETE", f"/api/v1/connections/{cid}", None),
        ("GET", f"/api/v1/syncs/{rid}", None),
        ("GET", f"/api/v1/products/{pid}", None),
        ("GET", f"/api/v1/products/{pid}/stock-history", None),
        ("GET", f"/api/v1/products/{pid}/days-of-cover", None),
    ]:
        resp = await client.request(method, path, json=body, headers=h)
        assert resp.status_code == 404, (method, path, resp.status_code, resp.text)
    assert (await client.get("/api/v1/products", headers=h)).json()["items"] == []
    assert (await client.get("/api/v1/syncs", headers=h)).json()["items"] == []
    assert (await client.get(f"/api/v1/connections/{cid}", headers=a["headers"])).status_code == 200
    seller.delete()


async def test_fanout_enqueues_each_due_connection_once(client, settings, marketplace_sandbox, redis):
    sellers, conns = [], []
    for i in range(3):
        owner = await register(client, f"T{i}")
        seller = make_seller(marketplace_sandbox, products=2, warehouses=1, seed=80 + i)
        sellers.append(seller)
        conns.append(await connect(client, owner["headers"], seller))
    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    queue = arq_client(settings.redis_url, settings.queue_name)
    try:
        now = 1_900_000_000.0
        # Two workers tick at the same moment: together they enqueue each connection once.
        a, b = await asyncio.gather(fan_out(sm, queue, settings, now), fan_out(sm, queue, settings, now))
        ours = {c["id"] for c in conns}
        jobs = [k.decode() for k in await redis.keys("arq:job:sync:*")]
        mine = [j for j in jobs if j.split(":")[3] in ours]
        assert len(mine) == 3 and a + b >= 3
        await fan_out(sm, queue, settings, now + 60)  # next minute: same slot, nothing new for ours
        jobs = [k.decode() for k in await redis.keys("arq:job:sync:*")]
        assert len([j for j in jobs if j.split(":")[3] in ours]) == 3
        later = now + 61 * 60  # two self-hosted intervals (30 min) later every connection is due again
        await fan_out(sm, queue, settings, later)
        jobs = [k.decode() for k in await redis.keys("arq:job:sync:*")]
        assert len([j for j in jobs if j.split(":")[3] in ours]) == 6
    finally:
        for key in await redis.keys("arq:job:sync:*"):
            await redis.delete(key)
        await redis.delete(settings.queue_name)
        await queue.aclose()
        await engine.dispose()
        for s in sellers:
            s.delete()
