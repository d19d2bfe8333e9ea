"""Issue 14 §1: a sync run always ends, and says truthfully how it ended.

Against the sandbox over real HTTP, real PostgreSQL and Redis, real arq workers: 429s waited out inside the
step and capped per run, a slow-budget step deferred while the stock is written, a run that must wait shown
``waiting``, the per-connection lease across workers and after a crash, the sweep, and the connection's
last attempt / outcome.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import msgspec
from sqlalchemy import text

from app.config import Settings
from app.db.engine import create_engine, create_sessionmaker, session_scope
from app.domain.sync.jobs import sync_connection
from app.domain.sync.lease import SyncLease, lock_key
from app.domain.sync.records import StageLog
from app.domain.sync.stash import RunStash
from app.domain.sync.sweep import sweep_expired_runs
from app.integrations.wildberries import limits
from app.lib.ratelimit import RateLimiter
from tests.fakes import worker_context
from tests.helpers import register
from tests.integration.sync.test_sync_failures import QuickGateway, _env, assert_matches
from tests.sync_support import connect, make_seller, our_stock, relay_pending, run_worker, truth_map

CARDS = "POST /wb/content/v2/get/cards/list"
FBW = "stocks-report/wb-warehouses"


def _with(settings: Settings, **overrides: Any) -> Settings:
    return msgspec.structs.replace(settings, **overrides)


async def _run(client: Any, headers: dict[str, str], run_id: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/syncs/{run_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def _connection(client: Any, headers: dict[str, str], connection_id: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/connections/{connection_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def _job(settings: Settings, job_id: str, **kwargs: Any) -> Any:
    """Run the sync job once in this process, as the worker would (one try, the production gateway with
    one HTTP attempt per call)."""
    async with worker_context(settings) as ctx:
        ctx["gateway"] = QuickGateway(settings, ctx["http"], RateLimiter(ctx["redis"]))
        ctx["job_id"] = job_id
        ctx["job_try"] = 1
        return await sync_connection(ctx, **kwargs)


def _calls(seller: Any) -> int:
    return sum(seller.summary()["stats"]["requests"].values())


async def test_a_429_storm_ends_the_run_rate_limited_within_the_cap(client, settings, marketplace_sandbox):
    """Every request answers 429 (Retry-After 1 s): the run waits inside its step until the run's wait cap,
    then ends failed/rate_limited — not queued, not retried from the start. The refused step says failed
    with its error, counts.calls is what the marketplace saw, and last_success_at stays where it was while
    last_attempt_at / last_outcome tell what happened."""
    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=10, warehouses=1, seed=141)
    conn = await connect(client, headers, seller)
    tid, cid = owner["tenant"]["id"], conn["id"]
    try:
        ok = await _job(settings, f"sync:{cid}:ok", tenant_id=tid, connection_id=cid)
        assert ok == "succeeded"
        before = await _connection(client, headers, cid)
        assert before["last_success_at"] is not None and before["last_outcome"] == "succeeded"
        seen = _calls(seller)
        seller.faults(error_rate=1.0, status=429, retry_after=1, rate_limits="off")
        capped = _with(settings, sync_max_wait_s=3)
        started = time.monotonic()
        outcome = await _job(capped, f"sync:{cid}:storm", tenant_id=tid, connection_id=cid)
        elapsed = time.monotonic() - started
        assert outcome == "failed"
        assert elapsed < 3 + 5  # the cap, plus the run's own work: not arq's retries over many minutes
        runs = (await client.get("/api/v1/syncs", params={"connection_id": cid}, headers=headers)).json()["items"]
        run = runs[0]
        assert run["status"] == "failed" and run["error_code"] == "rate_limited", run
        assert 3 <= run["waited_seconds"] <= 3.5
        assert run["stages"]["catalogue"]["status"] == "failed" and "429" in run["stages"]["catalogue"]["error"]
        assert run["counts"]["calls"] == _calls(seller) - seen >= 4  # the first try and three waited-out ones
        after = await _connection(client, headers, cid)
        assert after["last_success_at"] == before["last_success_at"]
        assert after["last_outcome"] == "rate_limited" and after["last_sync_status"] == "failed"
        assert after["last_attempt_at"] > before["last_attempt_at"]
    finally:
        seller.delete()


async def test_a_429_is_waited_out_inside_its_step_and_finished_steps_are_not_fetched_again(
    client, settings, marketplace_sandbox
):
    """The stock report answers 429 three times (Retry-After 1 s): the same request is sent again after the
    wait; the catalogue is read once, the run succeeds with the marketplace's stock and says how long it
    waited; counts.calls equals the requests the marketplace received."""
    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=150, warehouses=2, seed=143)  # two card pages
    conn = await connect(client, headers, seller)
    tid, cid = owner["tenant"]["id"], conn["id"]
    seen = _calls(seller)  # the credential check's /ping
    try:
        seller.faults(error_rate=1.0, status=429, retry_after=1, count=3, endpoint=FBW, rate_limits="off")
        assert await _job(settings, f"sync:{cid}:429", tenant_id=tid, connection_id=cid) == "succeeded"
        run = (await client.get("/api/v1/syncs", params={"connection_id": cid}, headers=headers)).json()["items"][0]
        assert run["status"] == "succeeded" and run["attempts"] == 1
        assert run["waited_seconds"] == 3.0
        assert run["stages"]["fbo_stock"]["status"] == "success"
        stats = seller.summary()["stats"]
        assert stats["requests"][CARDS] == 2  # each page once: nothing started over
        assert stats["requests"][f"POST /wb/api/analytics/v1/{FBW}"] == 4
        assert run["counts"]["calls"] == sum(stats["requests"].values()) - seen
        seller.faults(rate_limits="off")
        assert_matches(await our_stock(client, headers, cid), truth_map(seller.truth()))
    finally:
        seller.delete()


async def test_sync_now_writes_stock_when_the_orders_budget_is_spent(client, settings, marketplace_sandbox, redis):
    """Our limiter's budget for the WB orders feed (about one request a minute) is spent: "sync now" still
    writes the stock at once — the orders step is deferred with its resume time and the run succeeds — and
    the next run, with budget again, reads the orders."""
    limited = _with(settings, marketplace_rate_limits=True)
    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=20, warehouses=1, seed=145)
    conn = await connect(client, headers, seller)
    tid, cid = owner["tenant"]["id"], conn["id"]
    limiter = RateLimiter(redis)
    try:
        await limiter.charge(f"wb:{cid}", limits.ORDERS, 10)  # earlier syncs used the whole window
        resp = await client.post(f"/api/v1/connections/{cid}/syncs", headers=headers)
        assert resp.status_code == 202, resp.text
        started = time.monotonic()
        await run_worker(limited)
        assert time.monotonic() - started < 25  # one stocks-report window
        run = await _run(client, headers, resp.json()["id"])
        assert run["status"] == "succeeded", run
        orders = run["stages"]["orders"]
        assert orders["status"] == "deferred" and orders["resume_at"] > run["started_at"]
        assert "rate limit" in orders["error"]
        assert "write_orders" not in run["stages"] and run["stages"]["write_stock"]["status"] == "success"
        assert_matches(await our_stock(client, headers, cid), truth_map(seller.truth()))
        # The next run has budget again: it does the deferred step.
        for key in await redis.keys("rl:*"):
            await redis.delete(key)
        assert await _job(limited, f"sync:{cid}:next", tenant_id=tid, connection_id=cid) == "succeeded"
        runs = (await client.get("/api/v1/syncs", params={"connection_id": cid}, headers=headers)).json()["items"]
        assert runs[0]["stages"]["orders"]["status"] == "success" and "write_orders" in runs[0]["stages"]
    finally:
        seller.delete()


async def test_a_run_that_must_wait_is_waiting_with_resume_at_then_resumes_where_it_was(
    client, settings, marketplace_sandbox, redis
):
    """The stock report answers 429 with a 60 s wait, longer than a step waits in place: the run is
    ``waiting`` with ``resume_at`` and the reason (never ``queued``), handed on to a deferred job without
    spending arq tries; that job fetches only what was not done and the run succeeds."""
    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=30, warehouses=1, seed=147)
    conn = await connect(client, headers, seller)
    tid, cid = owner["tenant"]["id"], conn["id"]
    job_id = f"sync:{cid}:wait"
    seen = _calls(seller)
    try:
        seller.faults(error_rate=1.0, status=429, retry_after=60, count=1, endpoint=FBW, rate_limits="off")
        assert await _job(settings, job_id, tenant_id=tid, connection_id=cid) == "waiting"
        run = (await client.get("/api/v1/syncs", params={"connection_id": cid}, headers=headers)).json()["items"][0]
        assert run["status"] == "waiting" and run["finished_at"] is None
        assert run["resume_at"] is not None and run["status_reason"].startswith("fbo_stock: ")
        assert run["stages"]["fbo_stock"]["status"] == "deferred"
        assert run["stages"]["catalogue"]["status"] == "success"
        assert run["waited_seconds"] == 60
        # A trigger answers the live waiting run, with its resume time.
        joined = await client.post(f"/api/v1/connections/{cid}/syncs", headers=headers)
        assert joined.status_code == 202 and joined.json()["id"] == run["id"]
        assert joined.json()["status"] == "waiting" and joined.json()["resume_at"] == run["resume_at"]
        # Handed on to the next job, deferred about 60 s; the first job spent no arq retry.
        assert await redis.exists(f"arq:job:{job_id}+1")
        score = await redis.zscore(settings.queue_name, f"{job_id}+1")
        assert score is not None and score / 1000 - time.time() > 50
        assert not await redis.exists(f"arq:retry:{job_id}")
        cards = seller.summary()["stats"]["requests"][CARDS]
        # The next job runs (now, instead of a minute from now): only the steps not yet done are fetched.
        resumed = await _job(settings, f"{job_id}+1", tenant_id=tid, connection_id=cid, run_id=run["id"], hop=1)
        assert resumed == "succeeded"
        done = await _run(client, headers, run["id"])
        assert done["status"] == "succeeded" and done["resume_at"] is None and done["status_reason"] is None
        assert seller.summary()["stats"]["requests"][CARDS] == cards
        assert done["stages"]["fbo_stock"]["status"] == "success"
        assert done["counts"]["calls"] == _calls(seller) - seen  # both jobs' calls
        assert_matches(await our_stock(client, headers, cid), truth_map(seller.truth()))
    finally:
        await redis.delete(f"arq:job:{job_id}+1")
        await redis.zrem(settings.queue_name, f"{job_id}+1")
        seller.delete()


async def test_a_busy_connection_keeps_its_run_queued_without_spending_tries(
    client, settings, marketplace_sandbox, redis
):
    """Another holder has the connection's lease: the job keeps its run queued and hands it on to a job
    deferred to the lease's end (arq's try count untouched); once the lease runs out — its holder never
    renews it, as a dead worker would not — the run goes on and succeeds."""
    short = _with(settings, sync_lease_s=2)
    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=5, warehouses=1, seed=149)
    conn = await connect(client, headers, seller)
    tid, cid = owner["tenant"]["id"], conn["id"]
    job_id = f"sync:{cid}:busy"
    try:
        holder = SyncLease(redis, cid, 2)
        assert await holder.acquire()
        assert await _job(short, job_id, tenant_id=tid, connection_id=cid) == "queued"
        run = (await client.get("/api/v1/syncs", params={"connection_id": cid}, headers=headers)).json()["items"][0]
        assert run["status"] == "queued" and run["attempts"] == 0
        assert await redis.exists(f"arq:job:{job_id}+1") and not await redis.exists(f"arq:retry:{job_id}")
        assert 0 < await redis.pttl(lock_key(cid)) <= 2000  # a lease, not a 15-minute lock
        await run_worker(short)  # the handed-on job is due when the holder's lease ends
        done = await _run(client, headers, run["id"])
        assert done["status"] == "succeeded" and done["attempts"] == 1
        assert not await redis.exists(lock_key(cid))
    finally:
        seller.delete()


async def test_two_workers_never_sync_one_connection_at_once(client, settings, marketplace_sandbox, redis):
    """Two arq workers take two jobs of one connection at the same time: the lease (renewed while a sync
    outlasts it) lets one sync at a time; both runs succeed one after the other, no job fails."""
    short = _with(settings, sync_lease_s=1)
    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=10, warehouses=1, seed=151)
    conn = await connect(client, headers, seller)
    tid, cid = owner["tenant"]["id"], conn["id"]
    seller.faults(latency_ms=500, rate_limits="off")  # each sync outlasts the 1 s lease
    try:
        from app.lib.redis import arq_client

        queue = arq_client(short.redis_url, short.queue_name)
        try:
            for slot in ("a", "b"):
                await queue.enqueue_job(
                    "sync.connection",
                    tenant_id=tid,
                    connection_id=cid,
                    trigger="scheduled",
                    _job_id=f"sync:{cid}:{slot}",
                )
        finally:
            await queue.aclose()
        await asyncio.gather(run_worker(short), run_worker(short))
        runs = (await client.get("/api/v1/syncs", params={"connection_id": cid}, headers=headers)).json()["items"]
        assert len(runs) == 2 and all(r["status"] == "succeeded" for r in runs), runs
        first, second = sorted(runs, key=lambda r: r["started_at"])
        assert first["finished_at"] <= second["started_at"]  # one after the other
        assert first["duration_seconds"] > 1.5  # longer than the lease: renewal held it
        assert not await redis.keys("arq:retry:sync:*")
    finally:
        seller.delete()


async def test_a_killed_worker_frees_its_connection_within_a_lease_and_the_sweep_resumes_its_run(
    client, settings, marketplace_sandbox, redis
):
    """A real worker process is SIGKILLed mid-sync. Without anyone deleting anything, its lock is gone
    within one lease; the sweep resumes the orphan run under a fresh job (same run), which a trigger joins
    and a worker finishes; the dead job, delivered again, leaves it alone."""
    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=40, warehouses=1, seed=153)
    conn = await connect(client, headers, seller)
    cid = conn["id"]
    seller.faults(latency_ms=400, rate_limits="off")
    env = {**os.environ, **_env(settings), "STOCK_TRACKER_SYNC_LEASE_S": "2"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "app", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        resp = await client.post(f"/api/v1/connections/{cid}/syncs", headers=headers)
        run_id = resp.json()["id"]
        for _ in range(300):
            run = await _run(client, headers, run_id)
            if run["status"] == "running":
                break
            await asyncio.sleep(0.05)
        assert run["status"] == "running"
        await asyncio.sleep(0.3)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    killed = time.monotonic()
    seller.faults(rate_limits="off")
    assert await redis.exists(lock_key(cid))
    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    try:
        await sweep_expired_runs(sm, redis, lease_s=2, max_resumes=2)
        assert (await _run(client, headers, run_id))["status"] == "running"  # its lease has not run out yet
        while await redis.exists(lock_key(cid)):
            await asyncio.sleep(0.1)
        assert time.monotonic() - killed <= 2.5  # the lock died with its holder, within one lease
        await asyncio.sleep(max(0.0, 2.2 - (time.monotonic() - killed)))
        await sweep_expired_runs(sm, redis, lease_s=2, max_resumes=2)
    finally:
        await engine.dispose()
    run = await _run(client, headers, run_id)
    assert run["status"] == "queued" and run["finished_at"] is None and run["resumes"] == 1, run
    assert run["status_reason"].startswith("Resumed after its worker stopped (1 of 2)")
    joined = await client.post(f"/api/v1/connections/{cid}/syncs", headers=headers)
    assert joined.status_code == 202 and joined.json()["id"] == run_id and joined.json()["status"] == "queued"
    # The dead job, when arq runs it again (after its timeout: expired here at once), finds its run handed to
    # the fresh job and leaves it; the fresh job (from the outbox) syncs it.
    await redis.delete(f"arq:in-progress:sync:{cid}:manual:{run_id}")
    await relay_pending(settings, owner["tenant"]["id"])
    await run_worker(settings)
    run = await _run(client, headers, run_id)
    assert run["status"] == "succeeded" and run["resumes"] == 1 and run["attempts"] == 2, run
    assert (await _connection(client, headers, cid))["last_outcome"] == "succeeded"
    seller.delete()


async def test_the_sweep_keeps_runs_whose_job_exists_and_ends_those_whose_job_is_gone(
    client, settings, marketplace_sandbox, redis, database
):
    """Past its lease, a queued run whose job is still waiting (outbox or arq) is kept and its lease
    extended; one whose job is gone (arq gave up, Redis lost it) is dead: with no resumes left it ends
    abandoned, and a trigger that finds a dead run before the sweep does ends it and starts a fresh one."""
    import asyncpg

    from tests.conftest import _asyncpg_kwargs

    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=3, warehouses=1, seed=155)
    conn = await connect(client, headers, seller)
    cid = conn["id"]
    db = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    try:
        run_id = (await client.post(f"/api/v1/connections/{cid}/syncs", headers=headers)).json()["id"]
        expire = "UPDATE sync_runs SET lease_expires_at = now() - interval '1 second' WHERE id = $1"
        await db.execute(expire, uuid.UUID(run_id))
        # Its job is in arq (or still in the outbox): alive, its lease moves on.
        await sweep_expired_runs(sm, redis, lease_s=30, max_resumes=0)
        run = await _run(client, headers, run_id)
        assert run["status"] == "queued"
        lease = await db.fetchval("SELECT lease_expires_at FROM sync_runs WHERE id = $1", uuid.UUID(run_id))
        assert lease.timestamp() > time.time() + 30
        # The job vanishes (arq dropped it after its last try): the run is dead.
        job_id = f"sync:{cid}:manual:{run_id}"
        await redis.delete(f"arq:job:{job_id}")
        await redis.zrem(settings.queue_name, job_id)
        await db.execute("UPDATE outbox SET enqueued_at = now() WHERE job_id = $1", job_id)
        await db.execute(expire, uuid.UUID(run_id))
        async with session_scope(sm) as s:  # the cross-tenant read is the audited function, nothing else
            rows = (await s.execute(text("SELECT id FROM st_expired_sync_runs(now(), 10)"))).scalars().all()
        assert uuid.UUID(run_id) in rows
        # No resumes allowed (test_sync_resume.py resumes such runs): the run is dead and ends.
        await sweep_expired_runs(sm, redis, lease_s=30, max_resumes=0)
        run = await _run(client, headers, run_id)
        assert run["status"] == "failed" and run["error_code"] == "abandoned"
        # A dead run the sweep has not reached yet is never answered by a trigger.
        second = (await client.post(f"/api/v1/connections/{cid}/syncs", headers=headers)).json()["id"]
        await db.execute(expire, uuid.UUID(second))
        third = await client.post(f"/api/v1/connections/{cid}/syncs", headers=headers)
        assert third.status_code == 202 and third.json()["id"] not in (run_id, second), third.text
        assert (await _run(client, headers, second))["error_code"] == "abandoned"
        # The dead run's job may still come and find the connection busy: it hands itself on until the holder's
        # lease is due, and the burst worker waits for that job. A short lease keeps that wait to seconds (with
        # the 30 s default the test took ~30 s longer).
        await run_worker(_with(settings, sync_lease_s=2))
        assert (await _run(client, headers, third.json()["id"]))["status"] == "succeeded"
    finally:
        await db.close()
        await engine.dispose()
        seller.delete()


async def test_the_sweep_resumes_a_queued_run_whose_job_a_dead_worker_holds_in_progress(
    client, settings, marketplace_sandbox, redis, database
):
    """A worker that took a job and died before the sync started leaves arq's in-progress mark (arq hands
    the job out again only after its timeout): past its lease, with nobody holding the connection's lease,
    the run is resumed under a fresh job; while a worker holds the lease, it is kept."""
    import asyncpg

    from tests.conftest import _asyncpg_kwargs

    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=3, warehouses=1, seed=156)
    conn = await connect(client, headers, seller)
    cid = conn["id"]
    db = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    try:
        run_id = (await client.post(f"/api/v1/connections/{cid}/syncs", headers=headers)).json()["id"]
        job_id = f"sync:{cid}:manual:{run_id}"
        # What arq leaves when the worker that took the job is killed: the job and its in-progress mark.
        await redis.zrem(settings.queue_name, job_id)
        await redis.set(f"arq:in-progress:{job_id}", b"1", px=600_000)
        await db.execute("UPDATE outbox SET enqueued_at = now() WHERE job_id = $1", job_id)
        expire = "UPDATE sync_runs SET lease_expires_at = now() - interval '1 second' WHERE id = $1"
        # A worker holds the connection's lease: the job is being run, the run is kept.
        await redis.set(f"lock:sync:{cid}", "someone", px=30_000)
        await db.execute(expire, uuid.UUID(run_id))
        await sweep_expired_runs(sm, redis, lease_s=30, max_resumes=2)
        run = await _run(client, headers, run_id)
        assert run["status"] == "queued" and run["resumes"] == 0
        # Nobody holds it: the worker died with the job in progress.
        await redis.delete(f"lock:sync:{cid}")
        await db.execute(expire, uuid.UUID(run_id))
        await sweep_expired_runs(sm, redis, lease_s=30, max_resumes=2)
        run = await _run(client, headers, run_id)
        assert run["status"] == "queued" and run["resumes"] == 1 and run["error_code"] is None, run
        assert "the worker that took its job stopped" in run["status_reason"]
        assert await db.fetchval("SELECT count(*) FROM outbox WHERE job_id = $1", f"{job_id}+1") == 1
        await relay_pending(settings, owner["tenant"]["id"])
        await run_worker(settings)
        assert (await _run(client, headers, run_id))["status"] == "succeeded"
    finally:
        await redis.delete(f"arq:in-progress:sync:{cid}:manual:{run_id}")
        await db.close()
        await engine.dispose()
        seller.delete()


async def test_a_step_that_lost_part_of_its_source_says_failed_with_its_error(client, settings, marketplace_sandbox):
    """One seller warehouse of two fails (5xx): the fbs_stock step is failed with that warehouse's error —
    never success — the run is partially_failed, and last_success_at does not move (last_outcome says
    partially_failed)."""
    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=10, warehouses=2, seed=157)
    conn = await connect(client, headers, seller)
    tid, cid = owner["tenant"]["id"], conn["id"]
    seen = _calls(seller)
    try:
        seller.faults(error_rate=1.0, status=500, count=1, endpoint="api/v3/stocks/", rate_limits="off")
        assert await _job(settings, f"sync:{cid}:part", tenant_id=tid, connection_id=cid) == "partially_failed"
        run = (await client.get("/api/v1/syncs", params={"connection_id": cid}, headers=headers)).json()["items"][0]
        fbs = run["stages"]["fbs_stock"]
        assert fbs["status"] == "failed" and fbs["error"].startswith("fbs warehouse ") and fbs["counts"]["errors"] == 1
        assert all(r["status"] == "success" for name, r in run["stages"].items() if name != "fbs_stock")
        assert run["status"] == "partially_failed" and run["error_code"] == "partial"
        assert run["counts"]["calls"] == _calls(seller) - seen
        after = await _connection(client, headers, cid)
        assert after["last_success_at"] is None and after["last_outcome"] == "partially_failed"
        assert after["last_attempt_at"] is not None
    finally:
        seller.delete()


async def test_a_marketplace_outage_shows_the_run_waiting_until_its_retry(client, settings, marketplace_sandbox):
    """Every source answers 503: arq retries the job later (a real failure spends a try), and meanwhile the
    run says ``waiting`` with when it goes on and why — not ``queued``."""
    import pytest
    from arq import Retry

    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=3, warehouses=1, seed=159)
    conn = await connect(client, headers, seller)
    tid, cid = owner["tenant"]["id"], conn["id"]
    try:
        seller.faults(error_rate=1.0, status=503, rate_limits="off")
        with pytest.raises(Retry):
            await _job(settings, f"sync:{cid}:down", tenant_id=tid, connection_id=cid)
        run = (await client.get("/api/v1/syncs", params={"connection_id": cid}, headers=headers)).json()["items"][0]
        assert run["status"] == "waiting" and run["status_reason"].startswith("marketplace unavailable")
        assert run["resume_at"] > run["started_at"]
    finally:
        seller.delete()


async def test_a_lease_another_worker_took_over_cancels_the_sync_it_guarded(redis):
    """The lease is renewed (with the run's heartbeat) while the block runs; when a renewal finds the key
    is no longer ours — the process stalled past the TTL and another worker took the connection — the
    guarded work is cancelled (``LeaseLost``) instead of two syncs writing at once."""
    import pytest

    from app.domain.sync.lease import LeaseLost

    lease = SyncLease(redis, str(uuid.uuid4()), 0.3)
    assert await lease.acquire()
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        beats += 1

    with pytest.raises(LeaseLost):
        async with lease.kept(heartbeat):
            await asyncio.sleep(0.45)  # past the TTL: held only because it is renewed
            assert await redis.get(lease.key) == lease.token.encode()
            await redis.set(lease.key, "another-worker")
            await asyncio.sleep(5)  # cancelled at the next renewal, long before this ends
    assert beats >= 3
    assert await redis.get(lease.key) == b"another-worker"  # not ours to release
    await lease.release()
    assert await redis.get(lease.key) == b"another-worker"
    await redis.delete(lease.key)


async def _still_locked(redis: Any, connections: list[str], within_s: float) -> list[str]:
    """The connections whose sync lease is still held after waiting up to ``within_s`` for them to go."""
    deadline = time.monotonic() + within_s
    while True:
        locked = [c for c in connections if await redis.exists(lock_key(c))]
        if not locked or time.monotonic() >= deadline:
            return locked
        await asyncio.sleep(0.05)


async def test_manual_syncs_through_three_worker_kills_all_succeed_within_a_lease(
    client, settings, marketplace_sandbox, redis, database
):
    """The issue's reproduction: manual syncs of many connections, the worker SIGKILLed three times in the
    first seconds and started again each time. Every run succeeds — the killed ones resumed by the sweep under
    fresh jobs — within a lease, a few sweeps and the resumed syncs' own work after the last kill; no
    connection stays locked; no run stays queued or running."""
    import asyncpg

    from tests.conftest import _asyncpg_kwargs

    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=10, warehouses=1, seed=161)
    conns = [(await connect(client, headers, seller, f"Shop {i}"))["id"] for i in range(12)]
    seller.faults(latency_ms=400, rate_limits="off")
    # Three jobs at a time, so each kill catches syncs in flight and leaves others queued.
    env = {**os.environ, **_env(settings), "STOCK_TRACKER_SYNC_LEASE_S": "2", "STOCK_TRACKER_WORKER_MAX_JOBS": "3"}

    def start_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "app", "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    runs = []
    for cid in conns:
        resp = await client.post(f"/api/v1/connections/{cid}/syncs", headers=headers)
        assert resp.status_code == 202, resp.text
        runs.append(uuid.UUID(resp.json()["id"]))
    db = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    running_sql = "SELECT id FROM sync_runs WHERE id = ANY($1::uuid[]) AND status = 'running'"
    hit: set[uuid.UUID] = set()
    for _ in range(3):  # each worker is killed while syncs of its own are in flight
        worker = start_worker()
        for _ in range(400):
            running = {r["id"] for r in await db.fetch(running_sql, runs)}
            if running - hit:
                break
            await asyncio.sleep(0.05)
        hit |= running
        await asyncio.sleep(0.4)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    last_kill = time.monotonic()
    worker = start_worker()
    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    try:
        statuses: list[Any] = []
        while time.monotonic() - last_kill < 60:
            await sweep_expired_runs(sm, redis, lease_s=2, max_resumes=2)  # the cron, every second here
            await relay_pending(settings, owner["tenant"]["id"])  # the resumed runs' jobs (the API's relay, at once)
            statuses = await db.fetch(
                "SELECT status::text, error_code, finished_at, resumes FROM sync_runs WHERE id = ANY($1::uuid[])",
                runs,
            )
            if all(r["finished_at"] is not None for r in statuses):
                break
            await asyncio.sleep(1.0)
        ended_after = time.monotonic() - last_kill
        assert all(r["finished_at"] is not None for r in statuses), [dict(r) for r in statuses]
        assert ended_after < 2 + 30  # a lease, a sweep, and the surviving and resumed syncs' own work
        assert all(r["status"] == "succeeded" for r in statuses), [dict(r) for r in statuses]
        assert any(r["resumes"] > 0 for r in statuses)  # the kills did hit syncs, which were resumed
        # The job that ended a run releases its lease a few Redis calls after the run's end is committed (the
        # cache version, the active-tenants mark): a moment, not a lease (2 s, renewed while a sync runs).
        assert not await _still_locked(redis, conns, within_s=1.0)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        await db.close()
        await engine.dispose()
        seller.faults(rate_limits="off")
    # The killed jobs run again once their in-progress keys expire (expired here at once): they find their
    # runs ended (or handed to a fresh job) and leave them so. Every killed job, not only syncs: a kill that
    # caught a sync's follow-up (alerts.evaluate) in flight left its key too, and the burst worker below would
    # wait out that key's TTL (the job's timeout, minutes) before it could take the job and finish. Bounded,
    # so that a job left in progress fails here instead of waiting out its key.
    for key in await redis.keys("arq:in-progress:*"):
        await redis.delete(key)
    await asyncio.wait_for(run_worker(settings), 60)
    after = {
        r["id"]: r for r in (await client.get("/api/v1/syncs", params={"limit": 200}, headers=headers)).json()["items"]
    }
    assert all(after[str(r)]["finished_at"] is not None for r in runs)
    seller.delete()


async def test_a_step_deferred_half_way_runs_again_without_duplicating_what_it_had_read(
    client, settings, marketplace_sandbox, redis
):
    """The catalogue's second page answers 429 with a long wait: the run waits; its next job reads the
    catalogue again from its start — the first page read before is not kept twice — and the run succeeds
    with every product once."""
    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=250, warehouses=1, seed=163)  # three card pages
    conn = await connect(client, headers, seller)
    tid, cid = owner["tenant"]["id"], conn["id"]
    job_id = f"sync:{cid}:page2"
    try:
        faults = {"error_rate": 1.0, "status": 429, "retry_after": 60, "count": 1, "after": 1}
        seller.faults(**faults, endpoint="cards/list", rate_limits="off")
        assert await _job(settings, job_id, tenant_id=tid, connection_id=cid) == "waiting"
        run = (await client.get("/api/v1/syncs", params={"connection_id": cid}, headers=headers)).json()["items"][0]
        assert run["status"] == "waiting" and run["stages"]["catalogue"]["status"] == "deferred"
        # What the waiting run keeps for its next job has nothing of the half-read catalogue.
        kept = await RunStash(redis).load(uuid.UUID(run["id"]), StageLog())
        assert kept is not None and kept.catalog == [] and kept.catalogue_cursor is None
        resumed = await _job(settings, f"{job_id}+1", tenant_id=tid, connection_id=cid, run_id=run["id"], hop=1)
        assert resumed == "succeeded"
        done = await _run(client, headers, run["id"])
        assert done["stages"]["catalogue"]["counts"] == {"products": 250}
        assert done["counts"]["products"] == 250
        products = await client.get("/api/v1/products", params={"limit": 500}, headers=headers)
        assert len(products.json()["items"]) == 250
        assert_matches(await our_stock(client, headers, cid), truth_map(seller.truth()))
    finally:
        await redis.delete(f"arq:job:{job_id}+1")
        await redis.zrem(settings.queue_name, f"{job_id}+1")
        seller.delete()
