"""A fleet of sellers through one worker: N sandbox sellers of ~1 000 variants each, every connection's
first sync enqueued at once, one arq worker (the production settings: max_jobs 50) until the queue is empty.

    python -m bench.fleet [--sellers 1000] [--products 590] [--baseline 20]

performance.md: "1 000 sellers × 1 000 variants in ≤ 120 s on one worker". The sandbox runs as its own
process (`stock-tracker sandbox --no-rate-limits`), so it does not share the worker's interpreter. Same-run
baseline: the first ``--baseline`` sellers synced one at a time (max_jobs 1), extrapolated to the fleet.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from bench._common import ROOT, add_wb_connection, bench_settings, peak_rss_mb, report


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _drain(settings: Any, jobs: list[tuple[str, str]], max_jobs: int) -> tuple[datetime, float]:
    """Enqueue one sync per (tenant, connection) and run one worker until the queue is empty (the syncs and
    what they enqueue: alert evaluation, events, deliveries); when it started, and wall seconds."""
    from arq import create_pool
    from arq.worker import Worker

    from app.lib.redis import arq_settings
    from app.worker.settings import build_worker_settings

    pool = await create_pool(arq_settings(settings.redis_url), default_queue_name=settings.queue_name)
    for tid, cid in jobs:
        await pool.enqueue_job(
            "sync.connection", tenant_id=tid, connection_id=cid, trigger="scheduled", _job_id=f"sync:{cid}:fleet"
        )
    await pool.aclose()
    kwargs = build_worker_settings(settings, serve_metrics=False)
    kwargs.update(burst=True, handle_signals=False, cron_jobs=[], max_jobs=max_jobs)
    worker = Worker(**kwargs)
    at = datetime.now(UTC)
    started = time.perf_counter()
    try:
        await worker.main()
    finally:
        await worker.close()
    return at, time.perf_counter() - started


async def main(sellers: int, products: int, baseline: int) -> None:
    from sqlalchemy import func, select

    from app.db.engine import create_engine, create_sessionmaker, session_scope
    from app.db.models import StockLevel, SyncRun, Variant
    from app.db.models.notifications import Alert, Event
    from app.lib.crypto import CredentialCipher

    port = _free_port()
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "app", "sandbox", "--port", str(port), "--no-rate-limits"],
        cwd=ROOT,
        env={**os.environ, "STOCK_TRACKER_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/sandbox"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=300) as h:
            for _ in range(100):
                try:
                    if (await h.get("/wb/ping")).status_code < 500:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
            t0 = time.perf_counter()
            created = []
            for i in range(sellers + baseline):
                seller = (
                    await h.post(
                        "/control/sellers",
                        json={"marketplace": "wildberries", "products": products, "warehouses": 2, "seed": 100 + i},
                    )
                ).json()
                created.append(seller)
            seeded_s = time.perf_counter() - t0
        overrides = {"marketplace_rate_limits": False, "wb_base_url": f"{base}/wb", "db_pool_size": 20}
        async with bench_settings(**overrides) as settings:
            engine = create_engine(settings)
            sm = create_sessionmaker(engine)
            cipher = CredentialCipher(settings.encryption_key_list)
            pairs: list[tuple[str, str]] = []
            for seller in created:
                tid, cid = await add_wb_connection(sm, cipher, seller["credentials"], "fleet")
                pairs.append((str(tid), str(cid)))
            # Baseline: a sample one at a time, then the fleet with the worker's real concurrency.
            one_at_a_time = (await _drain(settings, pairs[:baseline], max_jobs=1))[1] if baseline else 0.0
            fleet_start, fleet = await _drain(settings, pairs[baseline:], max_jobs=settings.worker_max_jobs)
            statuses: dict[str, int] = {}
            by_type: dict[str, int] = {}
            variants = stock_rows = alerts = events = 0
            last_sync = fleet_start
            for tid, _ in pairs[baseline:]:
                async with session_scope(sm, uuid.UUID(tid)) as s:
                    for status, finished in (await s.execute(select(SyncRun.status, SyncRun.finished_at))).all():
                        statuses[status.value] = statuses.get(status.value, 0) + 1
                        last_sync = max(last_sync, finished or last_sync)
                    variants += int((await s.execute(select(func.count()).select_from(Variant))).scalar_one())
                    stock_rows += int((await s.execute(select(func.count()).select_from(StockLevel))).scalar_one())
                    alerts += int((await s.execute(select(func.count()).select_from(Alert))).scalar_one())
                    for kind, n in (await s.execute(select(Event.type, func.count()).group_by(Event.type))).all():
                        by_type[kind] = by_type.get(kind, 0) + int(n)
                        events += int(n)
            await engine.dispose()
    finally:
        os.killpg(sandbox.pid, signal.SIGTERM)
        sandbox.wait(timeout=30)
    per_seller = one_at_a_time / baseline if baseline else 0.0
    report(
        "fleet",
        {
            "sellers": sellers,
            "products_per_seller": products,
            "variants_total": variants,
            "variants_per_seller": round(variants / max(sellers, 1)),
            "stock_rows_total": stock_rows,
            "sandbox_seed_s": round(seeded_s, 1),
            "fleet_wall_s": round(fleet, 1),
            "last_sync_finished_after_s": round((last_sync - fleet_start).total_seconds(), 1),
            "alerts_opened_total": alerts,
            "events_total": events,
            # What people and integrations received about stock: one event per alert, or one digest per sync.
            "alerts_sent": sum(n for kind, n in by_type.items() if kind.startswith("stock.")),
            "events_by_type": dict(sorted(by_type.items())),
            "fleet_variants_per_s": round(variants / fleet),
            "sync_runs_by_status": statuses,
            "baseline_one_at_a_time_per_seller_s": round(per_seller, 3),
            "baseline_extrapolated_fleet_s": round(per_seller * sellers, 1),
            "speedup_vs_one_at_a_time": round(per_seller * sellers / fleet, 2) if fleet else None,
            "peak_rss_mb": round(peak_rss_mb()),
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sellers", type=int, default=1000)
    parser.add_argument("--products", type=int, default=590, help="~1.7 variants per product in the sandbox")
    parser.add_argument("--baseline", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.sellers, args.products, args.baseline))
