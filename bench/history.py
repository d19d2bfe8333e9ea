"""History that stays fast for years: a year of synthetic stock history for 100 sellers (one of them with
10 000 variants), read by the reports over 90 days — from the month-partitioned table (migration 0011) and,
as the same-run baseline, from the same rows in the unpartitioned layout it replaced (the old indexes).

    python -m bench.history [--sellers 100] [--big 10000] [--variants 500] [--days 365] [--rounds 5]

Queries, each as the application role inside the tenant's row-level-security transaction:

* ``stock_by_day_90d``: the big seller's end-of-day stock per variant × warehouse × day over 90 days (the
  "stock by day" report), a page of 500 products at a time as the stock report pages, and all 20 pages.
* ``product_history_90d``: ``GET /products/{id}/stock-history`` over 90 days, for 50 of its products.
* ``decreases_30d``: the reports' velocity fallback (decreases between points over 30 days) for a page, as
  ``ReportRepository.decrease_counts`` runs it today (no lower time bound) and bounded to 35 days before.

Target (issue 13 §4): a report over 90 days of history for a 10 000-variant seller answers in < 500 ms.
Also printed: rows, table size, and how long the retention of one month takes (a partition drop against
the same month's rows deleted in batches).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench._common import bench_settings, report
from tests.conftest import _asyncpg_kwargs

FLAT = "stock_history_flat"
# The pre-0011 layout: one table, the same columns and the indexes migration 0002 (and 0006's BRIN) gave it.
FLAT_DDL = [
    f"CREATE TABLE {FLAT} (LIKE stock_history INCLUDING DEFAULTS)",
    f"ALTER TABLE {FLAT} ADD PRIMARY KEY (id)",
    f"CREATE UNIQUE INDEX ON {FLAT} (sync_run_id, variant_id, warehouse_id)",
    f"CREATE INDEX ON {FLAT} (product_id, at)",
    f"CREATE INDEX ON {FLAT} (tenant_id)",
    f"CREATE INDEX ON {FLAT} (variant_id, warehouse_id, at)",
    f"CREATE INDEX ON {FLAT} USING brin (at)",
    f"ALTER TABLE {FLAT} ENABLE ROW LEVEL SECURITY",
    f"ALTER TABLE {FLAT} FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY tenant_isolation ON {FLAT} USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), "
    "'')::uuid)",
    f"GRANT SELECT ON {FLAT} TO stock_tracker_app",
]

# One page of the "stock by day" report (the stock report pages by product, 500 a page): the end-of-day stock
# of each variant × warehouse × day over the window, and each cell's opening value — its last point in the
# 35 days before the window, read in bulk (two partitions), and for the few cells with none there, one
# index probe each further back.
STOCK_BY_DAY = """
    WITH days AS (
        SELECT DISTINCT ON (h.variant_id, h.warehouse_id, (h.at AT TIME ZONE 'Europe/Moscow')::date)
               h.variant_id, h.warehouse_id, (h.at AT TIME ZONE 'Europe/Moscow')::date AS day, h.quantity
        FROM {table} h
        WHERE h.tenant_id = $1 AND h.product_id = ANY($4) AND h.at >= $2 AND h.at < $3
        ORDER BY h.variant_id, h.warehouse_id, (h.at AT TIME ZONE 'Europe/Moscow')::date, h.at DESC, h.id DESC
    ), near AS (
        SELECT DISTINCT ON (h.variant_id, h.warehouse_id) h.variant_id, h.warehouse_id, h.quantity
        FROM {table} h
        WHERE h.tenant_id = $1 AND h.product_id = ANY($4) AND h.at >= $2::timestamptz - interval '35 days' AND h.at < $2
        ORDER BY h.variant_id, h.warehouse_id, h.at DESC, h.id DESC
    ), far AS (
        SELECT s.variant_id, s.warehouse_id, o.quantity
        FROM stock_levels s
        LEFT JOIN near n ON n.variant_id = s.variant_id AND n.warehouse_id = s.warehouse_id
        CROSS JOIN LATERAL (
            SELECT h.quantity FROM {table} h
            WHERE h.variant_id = s.variant_id AND h.warehouse_id = s.warehouse_id
              AND h.at < $2::timestamptz - interval '35 days'
            ORDER BY h.at DESC LIMIT 1
        ) o
        WHERE s.tenant_id = $1 AND s.product_id = ANY($4) AND n.variant_id IS NULL
    )
    SELECT (SELECT count(*) FROM days), (SELECT count(*) FROM near), (SELECT count(*) FROM far)
"""

PRODUCT_HISTORY = """
    SELECT at, quantity, variant_id, warehouse_id, in_way_to_client, in_way_from_client FROM {table}
    WHERE tenant_id = $1 AND product_id = $2 AND at >= $3 AND at <= $4
    ORDER BY at, id LIMIT 10001
"""

# The reports' velocity fallback as ReportRepository.decrease_counts runs it today: no lower time bound
# (each cell's first point in the window needs the one before it), so it reads every point of the page's
# products back to the first — the cost grows with the years of history, partitioned or not.
DECREASES = """
    SELECT product_id, variant_id, warehouse_id, sum(greatest(prev - quantity, 0))::int
    FROM (
        SELECT product_id, variant_id, warehouse_id, at, quantity,
               lag(quantity) OVER (PARTITION BY variant_id, warehouse_id ORDER BY at, id) AS prev
        FROM {table} WHERE tenant_id = $1 AND product_id = ANY($2) AND at < $4
    ) h
    WHERE at >= $3 AND prev IS NOT NULL
    GROUP BY product_id, variant_id, warehouse_id
"""

# The same figure with the read bounded to 35 days before the window (a cell whose previous point is older
# than that starts counting at its first point in the window): what partition pruning can keep small.
DECREASES_BOUNDED = DECREASES.replace("AND at < $4", "AND at < $4 AND at >= $3::timestamptz - interval '35 days'")

PAGE = 500


async def seed(owner: asyncpg.Connection, sellers: int, big: int, variants: int, days: int) -> dict[str, Any]:
    """Tenants, connections, products (one variant each), one warehouse, current stock and a year of points:
    the big seller's cells change every 2 days on average, the others' every 6."""
    t0 = time.perf_counter()
    tenants = [uuid.uuid4() for _ in range(sellers)]
    await owner.execute(
        "INSERT INTO tenants (id, name, plan, timezone) SELECT t, 'bench', 'self_hosted', 'Europe/Moscow' "
        "FROM unnest($1::uuid[]) t",
        tenants,
    )
    await owner.execute(
        "INSERT INTO connections (id, tenant_id, marketplace, name, credentials_encrypted, status) "
        "SELECT t, t, 'wildberries', 'bench', '', 'active' FROM unnest($1::uuid[]) t",
        tenants,
    )
    await owner.execute(
        "INSERT INTO warehouses (id, tenant_id, connection_id, external_id, name, kind) "
        "SELECT t, t, t, 'w', 'Склад', 'fbs' FROM unnest($1::uuid[]) t",
        tenants,
    )
    sizes = [big] + [variants] * (sellers - 1)
    await owner.execute(
        """INSERT INTO products (id, tenant_id, connection_id, marketplace, external_id, vendor_code, title)
           SELECT gen_random_uuid(), s.t, s.t, 'wildberries', n::text, 'v' || n, 'Product ' || n
           FROM unnest($1::uuid[], $2::int[]) s(t, size), generate_series(1, s.size) n""",
        tenants,
        sizes,
    )
    await owner.execute(
        """INSERT INTO variants (id, tenant_id, connection_id, product_id, external_id)
           SELECT gen_random_uuid(), p.tenant_id, p.connection_id, p.id, p.external_id FROM products p
           WHERE p.tenant_id = ANY($1)""",
        tenants,
    )
    await owner.execute(
        """INSERT INTO stock_levels (tenant_id, variant_id, warehouse_id, connection_id, product_id, quantity)
           SELECT v.tenant_id, v.id, v.connection_id, v.connection_id, v.product_id, (random() * 50)::int
           FROM variants v WHERE v.tenant_id = ANY($1)""",
        tenants,
    )
    catalogue_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    now = datetime.now(UTC)
    # One statement per seller keeps each transaction's memory modest.
    for i, tenant in enumerate(tenants):
        every = 2 if i == 0 else 6
        await owner.execute(
            """INSERT INTO stock_history (tenant_id, variant_id, warehouse_id, product_id, sync_run_id, at, quantity)
               SELECT v.tenant_id, v.id, v.connection_id, v.product_id, NULL,
                      $2::timestamptz - make_interval(days => d) - make_interval(secs => (random() * 86000)::int),
                      (random() * 60)::int
               FROM variants v, generate_series(0, $3 - 1) d
               WHERE v.tenant_id = $1 AND random() < 1.0 / $4""",
            tenant,
            now,
            days,
            every,
        )
    history_s = time.perf_counter() - t0
    rows = int(await owner.fetchval("SELECT count(*) FROM stock_history"))
    t0 = time.perf_counter()
    for statement in FLAT_DDL[:1]:
        await owner.execute(statement)
    await owner.execute(f"INSERT INTO {FLAT} SELECT * FROM stock_history")
    for statement in FLAT_DDL[1:]:
        await owner.execute(statement)
    flat_s = time.perf_counter() - t0
    await owner.execute("VACUUM ANALYZE stock_history")
    await owner.execute(f"VACUUM ANALYZE {FLAT}")
    await owner.execute("ANALYZE stock_levels")
    return {
        "tenants": tenants,
        "rows": rows,
        "seed_catalogue_s": round(catalogue_s, 1),
        "seed_history_s": round(history_s, 1),
        "seed_history_rows_per_s": round(rows / history_s),
        "copy_to_flat_s": round(flat_s, 1),
    }


async def timed(app: asyncpg.Connection, tenant: uuid.UUID, sql: str, *args: Any) -> float:
    """Seconds for one statement inside the tenant's RLS transaction (as the API runs its reads)."""
    async with app.transaction():
        await app.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant))
        t0 = time.perf_counter()
        await app.fetch(sql, *args)
        return time.perf_counter() - t0


def ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000, 1)


async def measure(app: asyncpg.Connection, tenant: uuid.UUID, products: list[uuid.UUID], rounds: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    start90, start30 = now - timedelta(days=90), now - timedelta(days=30)
    pages = [products[i : i + PAGE] for i in range(0, len(products), PAGE)]
    tables = {"partitioned": "stock_history", "baseline_flat": FLAT}
    names = ("by_day_page", "by_day_all", "history", "decreases_page", "decreases_bounded_page")
    times: dict[str, dict[str, list[float]]] = {k: {n: [] for n in names} for k in tables}
    # Interleaved (each round reads both layouts) so the shared machine's load falls on both alike.
    for _ in range(rounds):
        for label, table in tables.items():
            t = times[label]
            by_day = STOCK_BY_DAY.format(table=table)
            whole = 0.0
            for page in pages:  # the whole seller, page after page (what an export or a Sheets push reads)
                seconds = await timed(app, tenant, by_day, tenant, start90, now, page)
                t["by_day_page"].append(seconds)
                whole += seconds
            t["by_day_all"].append(whole)
            for product in products[:50]:
                t["history"].append(
                    await timed(app, tenant, PRODUCT_HISTORY.format(table=table), tenant, product, start90, now)
                )
            t["decreases_page"].append(
                await timed(app, tenant, DECREASES.format(table=table), tenant, pages[0], start30, now)
            )
            t["decreases_bounded_page"].append(
                await timed(app, tenant, DECREASES_BOUNDED.format(table=table), tenant, pages[0], start30, now)
            )
    out: dict[str, Any] = {}
    for label, t in times.items():
        out[f"{label}_stock_by_day_90d_page_{PAGE}_p50_ms"] = ms(t["by_day_page"])
        out[f"{label}_stock_by_day_90d_page_{PAGE}_p95_ms"] = p95(t["by_day_page"])
        out[f"{label}_stock_by_day_90d_all_pages_ms"] = ms(t["by_day_all"])
        out[f"{label}_product_history_90d_p50_ms"] = ms(t["history"])
        out[f"{label}_product_history_90d_p95_ms"] = p95(t["history"])
        out[f"{label}_decreases_30d_page_as_today_ms"] = ms(t["decreases_page"])
        out[f"{label}_decreases_30d_page_bounded_ms"] = ms(t["decreases_bounded_page"])
    return out


async def retention_month(owner: asyncpg.Connection) -> dict[str, Any]:
    """Dropping the oldest month partition against deleting the same month's rows in 5 000-row batches."""
    oldest = await owner.fetchval(
        "SELECT min(c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'stock_history'::regclass AND c.relname ~ '^stock_history_p[0-9]{6}$'"
    )
    lo = datetime.strptime(oldest[-6:], "%Y%m").replace(tzinfo=UTC)
    hi = (lo + timedelta(days=32)).replace(day=1)
    rows = int(await owner.fetchval(f"SELECT count(*) FROM {oldest}"))
    t0 = time.perf_counter()
    deleted = 0
    while True:
        done = await owner.execute(
            f"DELETE FROM {FLAT} WHERE id IN (SELECT id FROM {FLAT} WHERE at >= $1 AND at < $2 LIMIT 5000)", lo, hi
        )
        n = int(done.split()[-1])
        deleted += n
        if n < 5000:
            break
    delete_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    await owner.fetch("SELECT * FROM st_history_drop_partitions($1)", hi)
    drop_s = time.perf_counter() - t0
    return {
        "retention_month_rows": rows,
        "retention_month_partition_drop_ms": round(drop_s * 1000, 1),
        "baseline_retention_month_batched_delete_ms": round(delete_s * 1000, 1),
        "baseline_rows_deleted": deleted,
    }


async def main(sellers: int, big: int, variants: int, days: int, rounds: int) -> None:
    async with bench_settings() as settings:
        owner = await asyncpg.connect(**_asyncpg_kwargs(settings.migration_database_url))
        app = await asyncpg.connect(**_asyncpg_kwargs(settings.database_url))
        try:
            # A partition for every month of the year of history (the cron keeps only the months ahead).
            await owner.fetch(
                "SELECT * FROM st_history_ensure_partitions((now() - make_interval(days => $1))::date, $2)",
                days + 1,
                days // 28 + 5,
            )
            seeded = await seed(owner, sellers, big, variants, days)
            tenant = seeded.pop("tenants")[0]
            products = [r[0] for r in await owner.fetch("SELECT id FROM products WHERE tenant_id = $1", tenant)]
            size = await owner.fetchrow(
                "SELECT pg_total_relation_size($1::regclass) AS flat, "
                "(SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
                " WHERE inhparent = 'stock_history'::regclass) AS part",
                FLAT,
            )
            partitions = int(
                await owner.fetchval("SELECT count(*) FROM pg_inherits WHERE inhparent = 'stock_history'::regclass")
            )
            big_rows = int(await owner.fetchval("SELECT count(*) FROM stock_history WHERE tenant_id = $1", tenant))
            figures = await measure(app, tenant, products, rounds)
            retention = await retention_month(owner)
        finally:
            await app.close()
            await owner.close()
    report(
        "history",
        {
            "sellers": sellers,
            "big_seller_variants": big,
            "other_sellers_variants": variants,
            "days": days,
            "history_rows": seeded["rows"],
            "big_seller_history_rows": big_rows,
            "partitions": partitions,
            "size_partitioned_mb": round(int(size["part"]) / 2**20),
            "size_flat_mb": round(int(size["flat"]) / 2**20),
            **{k: v for k, v in seeded.items() if k != "rows"},
            **figures,
            **retention,
            "rounds": rounds,
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sellers", type=int, default=100)
    parser.add_argument("--big", type=int, default=10_000, help="variants of the seller the reports read")
    parser.add_argument("--variants", type=int, default=500, help="variants of each other seller")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.sellers, args.big, args.variants, args.days, args.rounds))
