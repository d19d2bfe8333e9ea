"""Issue 13 §3, "no lost job": a run whose worker died is resumed under a fresh job, not abandoned.

The dead worker is simulated by leaving exactly what a SIGKILLed worker leaves (the chaos suite kills real
ones): the run ``running`` with its lease expired, arq's in-progress mark on its job (arq hands the job out
again only after its timeout), the job still in arq's queue, and no connection lease (its TTL ran out).
Real PostgreSQL, Redis, arq and the sandbox over HTTP; the sweep is the cron's own function.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg

from app.config import Settings
from app.db.engine import create_engine, create_sessionmaker
from app.db.models import SyncStatus
from app.domain.sync.lease import lock_key
from app.domain.sync.services import SyncService
from app.domain.sync.sweep import sweep_expired_runs
from app.lib.clock import utcnow
from tests.conftest import _asyncpg_kwargs
from tests.fakes import worker_context
from tests.helpers import register
from tests.integration.sync.test_sync_failures import assert_matches
from tests.integration.sync.test_sync_lifecycle import CARDS, FBW, _calls, _job, _run
from tests.sync_support import connect, make_seller, our_stock, relay_pending, run_worker, truth_map

EXPIRE = "UPDATE sync_runs SET lease_expires_at = now() - interval '1 second' WHERE id = $1"


@asynccontextmanager
async def _sweeper(settings: Settings, database: Any, tenant_id: str) -> AsyncIterator[Any]:
    """The cron's sweep, then the relay of this tenant's outbox rows (the cron relays its own at once; the
    sweep is cross-tenant, and other tests' leftover runs must not put jobs in this test's queue), and an
    owner connection to set the scene."""
    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    db = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    try:
        async with worker_context(settings) as ctx:

            async def sweep(max_resumes: int = 2) -> None:
                await sweep_expired_runs(ctx["sessionmaker"], ctx["redis"], lease_s=30, max_resumes=max_resumes)
                await relay_pending(settings, tenant_id)

            yield sweep, db, sm, ctx
    finally:
        await db.close()
        await engine.dispose()


async def _killed_while_running(db: Any, redis: Any, run_id: str, job_id: str, cid: str) -> None:
    """What a worker SIGKILLed mid-sync leaves: the run started and never renewed, arq's in-progress mark on
    its job, no connection lease (it ran out one lease after the kill)."""
    await db.execute(
        "UPDATE sync_runs SET status = 'running', started_at = now(), attempts = attempts + 1, "
        "lease_expires_at = now() - interval '1 second' WHERE id = $1",
        uuid.UUID(run_id),
    )
    await redis.set(f"arq:in-progress:{job_id}", b"1", px=600_000)
    await redis.delete(lock_key(cid))


async def _events(db: Any, run_id: str, kind: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM events WHERE type = $1 AND data->>'run_id' = $2", kind, run_id))


async def _history_points(db: Any, run_id: str) -> int:
    return int(await db.fetchval("SELECT count(*) FROM stock_history WHERE sync_run_id = $1", uuid.UUID(run_id)))


async def test_a_run_whose_worker_died_mid_sync_is_resumed_and_succeeds_once(
    client, settings, marketplace_sandbox, redis, database
):
    """A manual run killed mid-sync: the sweep puts it back to ``queued`` under the run's next job (same run
    id, ``resumes`` 1, the reason shown), the fresh job syncs it. The old job, delivered again (arq does after
    its timeout), is a no-op both while the resumed run waits and after it succeeded: one sync, one event,
    no history point twice."""
    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=8, warehouses=1, seed=171)
    conn = await connect(client, headers, seller)
    tid, cid = owner["tenant"]["id"], conn["id"]
    resp = await client.post(f"/api/v1/connections/{cid}/syncs", headers=headers)
    assert resp.status_code == 202, resp.text
    run_id = resp.json()["id"]
    old_job = f"sync:{cid}:manual:{run_id}"
    new_job = f"{old_job}+1"
    async with _sweeper(settings, database, owner["tenant"]["id"]) as (sweep, db, sm, ctx):
        try:
            assert await redis.zscore(settings.queue_name, old_job) is not None  # the API enqueued it
            await _killed_while_running(db, redis, run_id, old_job, cid)
            await sweep()
            run = await _run(client, headers, run_id)
            assert run["status"] == "queued" and run["finished_at"] is None and run["error_code"] is None, run
            assert run["resumes"] == 1
            assert run["status_reason"].startswith(
                "Resumed after its worker stopped (1 of 2): its lease was not renewed"
            )
            assert await db.fetchval("SELECT job_id FROM sync_runs WHERE id = $1", uuid.UUID(run_id)) == new_job
            assert await redis.exists(f"arq:job:{new_job}")  # handed to a fresh job through the outbox
            await sweep()  # its new lease covers the wait: nothing twice
            assert (await _run(client, headers, run_id))["resumes"] == 1
            # The old job delivered again while the resumed run waits for its new job: it leaves the run alone.
            seen = _calls(seller)
            assert await _job(settings, old_job, tenant_id=tid, connection_id=cid, trigger="manual", run_id=run_id) == (
                "queued"
            )
            assert _calls(seller) == seen
            # Past that first look too (a delivery racing the resume): the run's start and the hand-on of a busy
            # connection check, under the run's row lock, that the run is still the job's.
            service = SyncService(sm, ctx["gateway"], ctx["cipher"])
            rid, t, c = uuid.UUID(run_id), uuid.UUID(tid), uuid.UUID(cid)
            assert await service.run(t, c, rid, "manual", old_job) is SyncStatus.QUEUED
            busy = "another sync of this connection is running"
            until = utcnow() + timedelta(seconds=60)
            assert not await service.hold(t, c, rid, "manual", new_job, busy, until, current_job=old_job)
            assert _calls(seller) == seen
            assert (await _run(client, headers, run_id))["status"] == "queued"
            assert not await redis.exists(lock_key(cid))
            # The fresh job runs it (the old one is still held in progress by the dead worker: a burst worker
            # stops only on an empty queue, so it is set aside and comes back below, as arq delivers it again).
            score = await redis.zscore(settings.queue_name, old_job)
            await redis.zrem(settings.queue_name, old_job)
            await run_worker(settings)
            done = await _run(client, headers, run_id)
            assert done["status"] == "succeeded" and done["resumes"] == 1 and done["status_reason"] is None, done
            assert done["attempts"] == 2  # the killed start and the resumed one
            assert_matches(await our_stock(client, headers, cid), truth_map(seller.truth()))
            points, calls = await _history_points(db, run_id), _calls(seller)
            # arq's timeout passes: it delivers the old job again, to a worker that takes it (try 2).
            await redis.zadd(settings.queue_name, {old_job: score})
            await redis.delete(f"arq:in-progress:{old_job}")
            await run_worker(settings)
            assert _calls(seller) == calls and await _history_points(db, run_id) == points
            again = await _run(client, headers, run_id)
            assert again["status"] == "succeeded" and again["finished_at"] == done["finished_at"]
            await relay_pending(settings, tid)
            await run_worker(settings)
            assert await _events(db, run_id, "sync.succeeded") == 1
            assert await _events(db, run_id, "sync.failed") == 0
        finally:
            await redis.delete(f"arq:in-progress:{old_job}")
            seller.delete()


async def test_a_run_that_kills_its_worker_each_time_ends_abandoned_after_max_resumes(
    client, settings, marketplace_sandbox, redis, database
):
    """A sync that kills its worker every time (out of memory on a huge seller) is resumed ``max_resumes``
    times, each under the next job; the next death ends it ``failed``/``abandoned`` as before — one
    ``sync.failed`` event, the connection's last outcome — and no job is enqueued for it any more."""
    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=3, warehouses=1, seed=172)
    conn = await connect(client, headers, seller)
    cid = conn["id"]
    run_id = (await client.post(f"/api/v1/connections/{cid}/syncs", headers=headers)).json()["id"]
    first = f"sync:{cid}:manual:{run_id}"
    jobs = [first]
    async with _sweeper(settings, database, owner["tenant"]["id"]) as (sweep, db, _sm, _ctx):
        try:
            for n in (1, 2):
                await _killed_while_running(db, redis, run_id, jobs[-1], cid)
                await sweep()
                run = await _run(client, headers, run_id)
                assert run["status"] == "queued" and run["resumes"] == n, run
                assert run["status_reason"].startswith(f"Resumed after its worker stopped ({n} of 2)")
                jobs.append(f"{first}+{n}")
                assert await redis.exists(f"arq:job:{jobs[-1]}")
            await _killed_while_running(db, redis, run_id, jobs[-1], cid)
            await sweep()
            run = await _run(client, headers, run_id)
            assert run["status"] == "failed" and run["error_code"] == "abandoned" and run["resumes"] == 2, run
            assert "after 2 resumes" in run["error"]
            assert not await redis.exists(f"arq:job:{first}+3")
            assert await db.fetchval("SELECT count(*) FROM outbox WHERE job_id = $1", f"{first}+3") == 0
            conn_after = (await client.get(f"/api/v1/connections/{cid}", headers=headers)).json()
            assert conn_after["last_outcome"] == "abandoned"
            await sweep()
            assert (await _run(client, headers, run_id))["resumes"] == 2
            await relay_pending(settings, owner["tenant"]["id"])
            for job in jobs:  # set aside: their workers are dead (the burst worker needs an empty queue)
                await redis.zrem(settings.queue_name, job)
            await run_worker(settings)
            assert await _events(db, run_id, "sync.failed") == 1
            # With no resumes allowed, a death ends the run at once (the behaviour before resumes).
            second = (await client.post(f"/api/v1/connections/{cid}/syncs", headers=headers)).json()["id"]
            second_job = f"sync:{cid}:manual:{second}"
            await _killed_while_running(db, redis, second, second_job, cid)
            await sweep(max_resumes=0)
            ended = await _run(client, headers, second)
            assert ended["error_code"] == "abandoned" and ended["resumes"] == 0, ended
            await redis.zrem(settings.queue_name, second_job)
        finally:
            for job in [*jobs, f"sync:{cid}:manual:{run_id}"]:
                await redis.delete(f"arq:in-progress:{job}")
            seller.delete()


async def test_a_waiting_run_whose_job_is_gone_is_resumed_with_what_it_had_fetched(
    client, settings, marketplace_sandbox, redis, database
):
    """A run waiting on a marketplace budget (what it fetched kept in its stash) whose deferred job is gone
    (Redis lost it, or the worker died handing it on): past its lease the sweep resumes it under the next
    hop, and that job fetches only the steps not yet done — the stash of the same run id is reused."""
    owner = await register(client)
    headers = owner["headers"]
    seller = make_seller(marketplace_sandbox, products=20, warehouses=1, seed=173)
    conn = await connect(client, headers, seller)
    tid, cid = owner["tenant"]["id"], conn["id"]
    job_id = f"sync:{cid}:gone"
    async with _sweeper(settings, database, owner["tenant"]["id"]) as (sweep, db, _sm, _ctx):
        try:
            seller.faults(error_rate=1.0, status=429, retry_after=60, count=1, endpoint=FBW, rate_limits="off")
            assert await _job(settings, job_id, tenant_id=tid, connection_id=cid) == "waiting"
            run = (await client.get("/api/v1/syncs", params={"connection_id": cid}, headers=headers)).json()["items"]
            run_id = run[0]["id"]
            assert await redis.exists(f"sync:stash:{run_id}")
            # The deferred job is lost.
            await redis.delete(f"arq:job:{job_id}+1")
            await redis.zrem(settings.queue_name, f"{job_id}+1")
            await db.execute(EXPIRE, uuid.UUID(run_id))
            await sweep()
            resumed = await _run(client, headers, run_id)
            assert resumed["status"] == "queued" and resumed["resumes"] == 1, resumed
            assert "its job is gone" in resumed["status_reason"]
            assert resumed["resume_at"] is None
            assert await redis.exists(f"arq:job:{job_id}+2")
            cards = seller.summary()["stats"]["requests"][CARDS]
            outcome = await _job(settings, f"{job_id}+2", tenant_id=tid, connection_id=cid, run_id=run_id, hop=2)
            assert outcome == "succeeded"
            assert seller.summary()["stats"]["requests"][CARDS] == cards  # the catalogue came from the stash
            done = await _run(client, headers, run_id)
            assert done["status"] == "succeeded" and done["stages"]["catalogue"]["status"] == "success"
            assert done["stages"]["fbo_stock"]["status"] == "success"
            assert_matches(await our_stock(client, headers, cid), truth_map(seller.truth()))
        finally:
            await redis.delete(f"arq:job:{job_id}+2")
            await redis.zrem(settings.queue_name, f"{job_id}+2")
            seller.delete()
