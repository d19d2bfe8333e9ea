"""Sync a 100 000-variant sandbox seller with limits off; compare with a naive per-row ORM upsert.

Prints rows/s, wall time and peak RSS for our path (fetch over HTTP → normalise → COPY + one sorted
set-based upsert with an IS DISTINCT FROM guard), the same rows written again (must write 0), and the
same load through a per-row ORM upsert (select, then insert or update, one row at a time) as the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import httpx

from bench._common import add_wb_connection, bench_settings, peak_rss_mb, report


async def main(products: int, warehouses: int, baseline_rows: int) -> None:
    from sqlalchemy import select

    from app.db.engine import create_engine, create_sessionmaker, session_scope
    from app.db.models import StockLevel, SyncRun, Variant, Warehouse
    from app.domain.connections.gateway import MarketplaceGateway
    from app.domain.sync.services import SyncService
    from app.lib.crypto import CredentialCipher
    from app.lib.outbound import marketplace_http_client
    from tests.sandbox_server import serve_sandbox

    with serve_sandbox() as sandbox:
        async with bench_settings(marketplace_rate_limits=False) as settings:
            settings = type(settings)(
                **{**{f: getattr(settings, f) for f in settings.__struct_fields__}, "wb_base_url": f"{sandbox}/wb"}
            )
            async with httpx.AsyncClient(base_url=sandbox, timeout=120) as h:
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
            t0 = time.perf_counter()
            await service.run(tid, cid, uuid.uuid4(), "manual", None)
            first_wall = time.perf_counter() - t0
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
                "stock_pipeline_rows_per_s_first": round(rows / pipeline(stages)),
                "stock_pipeline_rows_per_s_resync": round(rows / pipeline(second_stages)),
                "resync_identical_wall_s": round(second_wall, 2),
                "resync_rows_written": second_counts.get("changes", 0) + second_counts.get("zeroed", 0),
                "resync_stages_s": seconds(second_stages),
                "baseline_naive_orm_rows": len(cells),
                "baseline_naive_orm_rows_per_s": round(len(cells) / naive),
                "peak_rss_mb": round(peak_rss_mb(), 1),
            },
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--products", type=int, default=60_000)
    p.add_argument("--warehouses", type=int, default=3)
    p.add_argument("--baseline-rows", type=int, default=5_000)
    a = p.parse_args()
    asyncio.run(main(a.products, a.warehouses, a.baseline_rows))
