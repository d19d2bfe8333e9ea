"""Sync run lifecycle (issue 14 §1): what a seller waits for, and how fast a crash is recovered.

    python -m bench.sync_lifecycle [--repeat 3] [--products 200]

Against the sandbox in its own process (its own limits off; ours on), real PostgreSQL and Redis, the sync
job as the worker runs it. Each figure has its same-run baseline:

* **sync now with the orders budget spent** — wall time of a manual sync whose WB orders-feed budget (about
  one request a minute) is used up, vs. the same sync with budget (baseline). ``orders_wait_avoided_s`` is
  what the run would have waited for the orders budget had the whole run been deferred (before issue 14).
* **429 storm** — every request answers 429 (Retry-After 1 s) with ``STOCK_TRACKER_SYNC_MAX_WAIT_S`` = 5:
  seconds until the run has ended ``failed``/``rate_limited``, vs. a clean sync (baseline).
* **worker SIGKILLed mid-sync** (lease 30 s, sweep every 15 s as the cron does) — seconds from the kill
  until the connection's lease is free and until the run is ended ``abandoned``, vs. the bound arq itself
  gives a dead job (its in-progress key's TTL: job timeout + 10 s) and the 15-minute lock of before.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

import httpx
import msgspec

from bench._common import ROOT, add_wb_connection, bench_settings, report


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _seller(h: httpx.AsyncClient, products: int, seed: int) -> dict[str, Any]:
    body = {"marketplace": "wildberries", "products": products, "warehouses": 2, "seed": seed}
    return (await h.post("/control/sellers", json=body)).json()


async def _faults(h: httpx.AsyncClient, seller_id: str, **faults: Any) -> None:
    (await h.put(f"/control/sellers/{seller_id}/faults", json={"rate_limits": "off", **faults})).raise_for_status()


async def _sync(settings: Any, tid: Any, cid: Any, job_id: str) -> tuple[str | None, float]:
    from app.domain.sync.jobs import sync_connection
    from app.lib.redis import arq_client
    from app.worker.context import close_job_context, open_job_context

    redis = arq_client(settings.redis_url, settings.queue_name)
    ctx: Any = open_job_context(settings, redis)
    ctx.update(job_id=job_id, job_try=1)
    try:
        started = time.perf_counter()
        outcome = await sync_connection(ctx, tenant_id=str(tid), connection_id=str(cid))
        return outcome, time.perf_counter() - started
    finally:
        await close_job_context(ctx)
        await redis.aclose()


async def _run_row(sm: Any, tid: Any, cid: Any) -> Any:
    from sqlalchemy import select

    from app.db.engine import session_scope
    from app.db.models import SyncRun

    async with session_scope(sm, tid) as s:
        stmt = select(SyncRun).where(SyncRun.connection_id == cid).order_by(SyncRun.created_at.desc()).limit(1)
        return (await s.execute(stmt)).scalar_one()


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


async def main(repeat: int, products: int) -> None:
    from app.db.engine import create_engine, create_sessionmaker
    from app.domain.sync.sweep import sweep_expired_runs
    from app.integrations.wildberries import limits
    from app.lib.crypto import CredentialCipher
    from app.lib.ratelimit import RateLimiter
    from app.lib.redis import redis_client

    port = _free_port()
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "app", "sandbox", "--port", str(port), "--no-rate-limits"],
        cwd=ROOT,
        env={**os.environ, "STOCK_TRACKER_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/sandbox"
    figures: dict[str, Any] = {"repeat": repeat, "products": products}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=300) as h:
            for _ in range(100):
                try:
                    if (await h.get("/wb/ping")).status_code < 500:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
            overrides = {"marketplace_rate_limits": True, "wb_base_url": f"{base}/wb"}
            async with bench_settings(**overrides) as settings:
                engine = create_engine(settings)
                sm = create_sessionmaker(engine)
                cipher = CredentialCipher(settings.encryption_key_list)
                redis = redis_client(settings.redis_url)
                limiter = RateLimiter(redis)
                seed = 500

                async def connection() -> tuple[Any, Any, str]:
                    nonlocal seed
                    seed += 1
                    seller = await _seller(h, products, seed)
                    await _faults(h, seller["id"])
                    tid, cid = await add_wb_connection(sm, cipher, seller["credentials"], "lifecycle")
                    return tid, cid, seller["id"]

                # 1. Sync now, orders budget spent vs. available (a fresh connection each: the stocks report
                #    allows one request per 20 s per account).
                with_budget, spent, avoided = [], [], []
                for i in range(repeat):
                    tid, cid, _ = await connection()
                    outcome, seconds = await _sync(settings, tid, cid, f"sync:{cid}:b{i}")
                    assert outcome == "succeeded", outcome
                    with_budget.append(seconds)
                    tid, cid, _ = await connection()
                    await limiter.charge(f"wb:{cid}", limits.ORDERS, 10)
                    outcome, seconds = await _sync(settings, tid, cid, f"sync:{cid}:s{i}")
                    run = await _run_row(sm, tid, cid)
                    assert outcome == "succeeded" and run.stages["orders"]["status"] == "deferred", run.stages
                    spent.append(seconds)
                    resume_at = datetime.fromisoformat(run.stages["orders"]["resume_at"])
                    avoided.append((resume_at - run.started_at).total_seconds())
                figures["sync_now_with_orders_budget_s (baseline)"] = _median(with_budget)
                figures["sync_now_orders_budget_spent_s"] = _median(spent)
                figures["orders_wait_avoided_s"] = _median(avoided)

                # 2. A 429 storm under a 5 s wait cap vs. a clean sync.
                capped = msgspec.structs.replace(settings, sync_max_wait_s=5, marketplace_rate_limits=False)
                clean, storm = [], []
                for i in range(repeat):
                    tid, cid, sid = await connection()
                    outcome, seconds = await _sync(capped, tid, cid, f"sync:{cid}:c{i}")
                    assert outcome == "succeeded", outcome
                    clean.append(seconds)
                    await _faults(h, sid, error_rate=1.0, status=429, retry_after=1)
                    outcome, seconds = await _sync(capped, tid, cid, f"sync:{cid}:t{i}")
                    run = await _run_row(sm, tid, cid)
                    assert outcome == "failed" and run.error_code == "rate_limited", (outcome, run.error_code)
                    storm.append(seconds)
                figures["clean_sync_s (baseline)"] = _median(clean)
                figures["storm_run_ended_rate_limited_after_s (cap 5 s)"] = _median(storm)

                # 3. A worker SIGKILLed mid-sync.
                tid, cid, sid = await connection()
                await _faults(h, sid, latency_ms=400)
                env = {
                    **os.environ,
                    "STOCK_TRACKER_ENV": "test",
                    "STOCK_TRACKER_DATABASE_URL": settings.database_url,
                    "STOCK_TRACKER_REDIS_URL": settings.redis_url,
                    "STOCK_TRACKER_JWT_SECRET": settings.jwt_secret,
                    "STOCK_TRACKER_ENCRYPTION_KEYS": settings.encryption_keys,
                    "STOCK_TRACKER_WB_BASE_URL": settings.wb_base_url,
                    "STOCK_TRACKER_QUEUE_NAME": settings.queue_name,
                    "STOCK_TRACKER_MARKETPLACE_RATE_LIMITS": "false",
                    "STOCK_TRACKER_WORKER_METRICS_PORT": "0",
                    "STOCK_TRACKER_WORKER_CRONS": "false",
                    "STOCK_TRACKER_LOG_LEVEL": "WARNING",
                }
                worker = subprocess.Popen(
                    [sys.executable, "-m", "app", "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
                )
                from app.lib.redis import arq_client

                queue = arq_client(settings.redis_url, settings.queue_name)
                job_id = f"sync:{cid}:crash"
                await queue.enqueue_job(
                    "sync.connection", tenant_id=str(tid), connection_id=str(cid), trigger="scheduled", _job_id=job_id
                )
                await queue.aclose()
                for _ in range(600):
                    if await redis.exists(f"lock:sync:{cid}"):
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(1.0)
                worker.send_signal(signal.SIGKILL)
                worker.wait(10)
                killed = time.perf_counter()
                arq_bound = await redis.pttl(f"arq:in-progress:{job_id}") / 1000
                lock_free = run_ended = None
                next_sweep = killed  # the cron's period: every 15 s
                while run_ended is None and time.perf_counter() - killed < 120:
                    if lock_free is None and not await redis.exists(f"lock:sync:{cid}"):
                        lock_free = time.perf_counter() - killed
                    if time.perf_counter() >= next_sweep:
                        next_sweep += 15
                        # No resumes: the figure is when the sweep acts on the dead run (a resume happens at
                        # the same moment), and the killed run stays ended for the next measurement.
                        await sweep_expired_runs(sm, redis, lease_s=settings.sync_lease_s, max_resumes=0)
                        if (await _run_row(sm, tid, cid)).error_code == "abandoned":
                            run_ended = time.perf_counter() - killed
                    await asyncio.sleep(0.25)
                figures["lease_s"] = settings.sync_lease_s
                figures["after_kill_lease_free_s"] = round(lock_free or -1, 1)
                figures["after_kill_run_ended_abandoned_s"] = round(run_ended or -1, 1)
                figures["after_kill_arq_rerun_bound_s (baseline)"] = round(arq_bound, 1)
                figures["old_lock_ttl_s (before issue 14)"] = 900
                await redis.delete(f"arq:in-progress:{job_id}", f"arq:job:{job_id}")
                await redis.zrem(settings.queue_name, job_id)
                await redis.aclose()
                await engine.dispose()
    finally:
        os.killpg(sandbox.pid, signal.SIGTERM)
        sandbox.wait(timeout=30)
    report("sync_lifecycle", figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--products", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.repeat, args.products))
