"""Sync a 100 000-variant sandbox seller with limits off; compare with a naive per-row ORM upsert.

    python -m bench.sync [--products 60000] [--warehouses 3] [--baseline-rows 5000] [--rss-steps]

Prints rows/s, wall time and peak RSS for our path (fetch over HTTP → normalise → COPY + one sorted
set-based write), the same rows written again (must write 0), and the same load through a per-row ORM upsert
(select, then insert or update, one row at a time) as the baseline. ``first_sync_stock_write_rows_per_s`` is
the stock write step alone (``write_stock``: COPY, the upsert with its history points, rule 3) — issue 13's
≥ 50 000 rows/s. The sandbox runs as its own process (``stock-tracker sandbox``), so ``peak_rss_mb`` is the
sync's own memory (issue 13: ≤ 300 MB for this seller), not the simulated marketplace's.

``--rss-steps`` (a bench-only probe, nothing in the app) prints the process's current RSS and its peak so far
after each step of the first sync (``rss_after_step_mb``): where the memory goes, step by step.
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
from typing import Any

import httpx

from bench._common import ROOT, add_wb_connection, bench_settings, free_port, peak_rss_mb, report


def current_rss_mb() -> float:
    """The resident set now (``/proc/self/status`` VmRSS), not the peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def probe_steps(into: dict[str, list[float]]) -> None:
    """Bench-only: wrap ``StageLog.step`` so each step's end records [current RSS, peak RSS so far] in MB."""
    from contextlib import contextmanager

    from app.domain.sync.records import StageLog

    original = StageLog.step

    @contextmanager
    def step(self: Any, name: str, stage: Any) -> Any:
        with original(self, name, stage) as record:
            yield record
        into.setdefault(name, [round(current_rss_mb(), 1), round(peak_rss_mb(), 1)])  # the first sync's only

    StageLog.step = step  # type: ignore[method-assign,assignment]


async def main(products: int, warehouses: int, baseline_rows: int, rss_steps: bool = False) -> None:
    from sqlalchemy import select

    from app.db.engine import create_engine, create_sessionmaker, session_scope
    from app.db.models import StockLevel, SyncRun, Variant, Warehouse
    from app.domain.connections.gateway import MarketplaceGateway
    from app.domain.sync.services import SyncService
    from app.lib.crypto import CredentialCipher
    from app.lib.outbound import marketplace_http_client

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "sandbox", "--port", str(port), "--no-rate-limits"],
        cwd=ROOT,
        env={**os.environ, "STOCK_TRACKER_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    sandbox = f"http://127.0.0.1:{port}/sandbox"
    rss: dict[str, list[float]] = {}
    try:
        async with bench_settings(marketplace_rate_limits=False, wb_base_url=f"{sandbox}/wb") as settings:
            async with httpx.AsyncClient(base_url=sandbox, timeout=300) as h:
                await wait_for_sandbox(h)
                t0 = time.perf_counter()
                seller = (
                    await h.post(
                        "/control/sellers",
                        json={"marketplace": "wildberries", "products": products, "warehouses": warehouses, "seed": 1},
                    )
                ).json()
                created = time.perf_counter() - t0
                await h.put(f"/control/sellers/{seller['id']}/faults", json={"rate_limits": "off"})
            engine = create_engine(settings, pool_size=4)
            sm = create_sessionmaker(engine)
            cipher = CredentialCipher(settings.encryption_key_list)
            tid, cid = await add_wb_connection(sm, cipher, seller["credentials"])
            http = marketplace_http_client()
            service = SyncService(sm, MarketplaceGateway(settings, http, None), cipher)
            rss["before_sync"] = [round(current_rss_mb(), 1), round(peak_rss_mb(), 1)]
            if rss_steps:
                probe_steps(rss)
            t0 = time.perf_counter()
            await service.run(tid, cid, uuid.uuid4(), "manual", None)
            first_wall = time.perf_counter() - t0
            first_sync_peak = peak_rss_mb()
            async with session_scope(sm, tid) as s:
                run = (await s.execute(select(SyncRun).order_by(SyncRun.created_at.desc()))).scalars().first()
                assert run is not None
                counts: dict[str, Any] = dict(run.counts)
                stages = dict(run.stages)
            t0 = time.perf_counter()
            await service.run(tid, cid, uuid.uuid4(), "manual", None)
            second_wall = time.perf_counter() - t0
            async with session_scope(sm, tid) as s:
                run2 = (await s.execute(select(SyncRun).order_by(SyncRun.created_at.desc()))).scalars().first()
                assert run2 is not None
                second_counts = dict(run2.counts)
                second_stages = dict(run2.stages)
            rows = int(counts["stock_rows"])

            # Baseline: the same stock rows through a naive per-row ORM upsert (select by key, insert or update).
            async with session_scope(sm, tid) as s:
                cells = (
                    await s.execute(
                        select(
                            StockLevel.variant_id, StockLevel.warehouse_id, StockLevel.product_id, StockLevel.quantity
                        ).limit(baseline_rows)
                    )
                ).all()
            t0 = time.perf_counter()
            async with session_scope(sm, tid) as s:
                for variant_id, warehouse_id, product_id, quantity in cells:
                    existing = (
                        await s.execute(
                            select(StockLevel).where(
                                StockLevel.variant_id == variant_id, StockLevel.warehouse_id == warehouse_id
                            )
                        )
                    ).scalar_one_or_none()
                    if existing is None:
                        s.add(
                            StockLevel(
                                tenant_id=tid,
                                variant_id=variant_id,
                                warehouse_id=warehouse_id,
                                connection_id=cid,
                                product_id=product_id,
                                quantity=quantity,
                            )
                        )
                    else:
                        existing.quantity = quantity + 1
                    await s.flush()
            naive = time.perf_counter() - t0
            async with session_scope(sm, tid) as s:
                n_variants = len((await s.execute(select(Variant.id))).all())
                n_wh = len((await s.execute(select(Warehouse.id))).all())
            await http.aclose()
            await engine.dispose()
            write_s = sum(float(r["seconds"]) for r in stages.values() if r["stage"] == "write")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)

        def pipeline(st: dict[str, Any]) -> float:
            """Stock only: fetch both sources over HTTP, decode, normalise and upsert."""
            return sum(float(st[k]["seconds"]) for k in ("fbo_stock", "fbs_stock", "write_stock") if k in st)

        def seconds(st: dict[str, Any]) -> dict[str, float]:
            """Each step's time (``SyncRun.stages`` holds a record per step: status, seconds, counts …)."""
            return {name: record["seconds"] for name, record in st.items()}

        report(
            "sync",
            {
                "products": products,
                "variants": n_variants,
                "warehouses": n_wh,
                "stock_rows": rows,
                "sandbox_seller_created_s": round(created, 2),
                "first_sync_wall_s": round(first_wall, 2),
                "first_sync_stages_s": seconds(stages),
                "first_sync_rows_per_s_end_to_end": round(rows / first_wall),
                "write_stage_rows_per_s": round(rows / write_s) if write_s else None,
                "first_sync_stock_write_rows_per_s": round(rows / float(stages["write_stock"]["seconds"])),
                "first_sync_history_points": int(counts.get("history_points", 0)),
                "stock_pipeline_rows_per_s_first": round(rows / pipeline(stages)),
                "stock_pipeline_rows_per_s_resync": round(rows / pipeline(second_stages)),
                "resync_identical_wall_s": round(second_wall, 2),
                "resync_rows_written": second_counts.get("changes", 0) + second_counts.get("zeroed", 0),
                "resync_history_points": second_counts.get("history_points", 0),
                "resync_stages_s": seconds(second_stages),
                "baseline_naive_orm_rows": len(cells),
                "baseline_naive_orm_rows_per_s": round(len(cells) / naive),
                "first_sync_peak_rss_mb": round(first_sync_peak, 1),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                **({"rss_after_step_mb": rss} if rss_steps else {}),
            },
        )


async def wait_for_sandbox(h: httpx.AsyncClient) -> None:
    for _ in range(150):
        try:
            if (await h.get("/wb/ping")).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the sandbox did not start")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--products", type=int, default=60_000)
    p.add_argument("--warehouses", type=int, default=3)
    p.add_argument("--baseline-rows", type=int, default=5_000)
    p.add_argument("--rss-steps", action="store_true", help="print the RSS after each step of the first sync")
    a = p.parse_args()
    asyncio.run(main(a.products, a.warehouses, a.baseline_rows, a.rss_steps))
