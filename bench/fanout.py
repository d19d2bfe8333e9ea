"""One cron tick over 10 000 due connections: enqueues/s, and duplicates when two workers tick at once.

Baseline in the same run: the same tick enqueuing one job at a time (no overlap of Redis round trips).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench._common import bench_settings, report


async def main(connections: int, tenants: int) -> None:
    import asyncpg

    from app.db.engine import create_engine, create_sessionmaker
    from app.domain.sync.scheduler import fan_out
    from app.lib.ids import uuid7
    from app.lib.redis import arq_client, redis_client
    from tests.conftest import _asyncpg_kwargs

    async with bench_settings() as settings:
        # Setup as the owner (bulk rows for the benchmark); the tick itself runs as the application role.
        owner = await asyncpg.connect(**_asyncpg_kwargs(settings.migration_database_url))
        tenant_ids = [uuid7() for _ in range(tenants)]
        await owner.copy_records_to_table(
            "tenants",
            records=[(t, "bench", "self_hosted", "Europe/Moscow") for t in tenant_ids],
            columns=["id", "name", "plan", "timezone"],
        )
        rows = [(uuid7(), tenant_ids[i % tenants], "wildberries", f"c{i}", b"x", "active") for i in range(connections)]
        await owner.copy_records_to_table(
            "connections",
            records=rows,
            columns=["id", "tenant_id", "marketplace", "name", "credentials_encrypted", "status"],
        )
        await owner.close()
        engine = create_engine(settings)
        sm = create_sessionmaker(engine)
        queue = arq_client(settings.redis_url, settings.queue_name)
        r = redis_client(settings.redis_url)
        now = time.time()
        t0 = time.perf_counter()
        first, second = await asyncio.gather(fan_out(sm, queue, settings, now), fan_out(sm, queue, settings, now))
        tick = time.perf_counter() - t0
        third = await fan_out(sm, queue, settings, now + 60)
        queued = await r.zcard(settings.queue_name)
        # Baseline: the same tick two intervals later (every connection due again), one enqueue at a time.
        t0 = time.perf_counter()
        baseline = await fan_out(sm, queue, settings, now + 7200, batch_size=1)
        naive = time.perf_counter() - t0
        for key in await r.keys("arq:job:sync:*"):
            await r.delete(key)
        await r.delete(settings.queue_name)
        await queue.aclose()
        await r.aclose()
        await engine.dispose()
        report(
            "fanout",
            {
                "due_connections": connections,
                "tenants": tenants,
                "two_concurrent_ticks_wall_s": round(tick, 3),
                "enqueued_by_tick_a": first,
                "enqueued_by_tick_b": second,
                "jobs_in_queue": queued,
                "duplicates": first + second - connections,
                "next_minute_tick_enqueued (must be 0)": third,
                "enqueues_per_s": round(connections / tick),
                "baseline_one_at_a_time_enqueued": baseline,
                "baseline_one_at_a_time_enqueues_per_s": round(baseline / naive),
            },
        )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--connections", type=int, default=10_000)
    p.add_argument("--tenants", type=int, default=500)
    a = p.parse_args()
    asyncio.run(main(a.connections, a.tenants))
