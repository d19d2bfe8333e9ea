"""Stock history partitioned by month (migration 0010): the migration converts a populated table without
losing a row (and back), the daily cron keeps months ready and moves a stray row into its month, and the
retention sweep drops whole months past every plan's retention instead of deleting their rows."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from app.cli.bootstrap import run_migrations
from app.db.engine import create_engine, create_sessionmaker, session_scope
from app.domain.retention.jobs import history_partitions, retention_sweep
from app.domain.retention.repositories import RetentionSystemRepository
from tests.conftest import _asyncpg_kwargs, _dsn, create_database, drop_database, make_settings
from tests.helpers import register
from tests.sync_support import connect, make_seller, sync_now

CHECKSUM = (
    "SELECT count(*), md5(string_agg(concat_ws(',', id, variant_id, warehouse_id, product_id, sync_run_id, "
    "extract(epoch FROM at), quantity, in_way_to_client, in_way_from_client, tenant_id), ';' ORDER BY id)) "
    "FROM stock_history"
)


def _month(d: date, months: int) -> date:
    m = d.year * 12 + d.month - 1 + months
    return date(m // 12, m % 12 + 1, 1)


async def _populate(url: str, rows: int) -> None:
    """A tenant with one variant and ``rows`` history points over the last 14 months (and one 3 years old)."""
    conn = await asyncpg.connect(**_asyncpg_kwargs(url))
    try:
        tid, cid, pid, vid, wid = (uuid.uuid4() for _ in range(5))
        await conn.execute(
            "INSERT INTO tenants (id, name, plan, timezone) VALUES ($1, 'Old history', 'self_hosted', 'UTC')", tid
        )
        await conn.execute(
            "INSERT INTO connections (id, tenant_id, marketplace, name, credentials_encrypted, status) "
            "VALUES ($1, $2, 'wildberries', 'c', '', 'active')",
            cid,
            tid,
        )
        await conn.execute(
            "INSERT INTO products (id, tenant_id, connection_id, marketplace, external_id) "
            "VALUES ($1, $2, $3, 'wildberries', 'p')",
            pid,
            tid,
            cid,
        )
        await conn.execute(
            "INSERT INTO variants (id, tenant_id, connection_id, product_id, external_id) VALUES ($1, $2, $3, $4, 'v')",
            vid,
            tid,
            cid,
            pid,
        )
        now = datetime.now(UTC)
        points = [
            (
                vid,
                wid,
                pid,
                uuid.uuid4() if i % 3 else None,
                now - timedelta(hours=i * 14 * 30 * 24 / rows),
                i % 97,
                i % 5 or None,
                None,
                tid,
            )
            for i in range(rows)
        ]
        points.append((vid, wid, pid, None, now - timedelta(days=3 * 365), 7, None, None, tid))
        await conn.copy_records_to_table(
            "stock_history",
            records=points,
            columns=[
                "variant_id",
                "warehouse_id",
                "product_id",
                "sync_run_id",
                "at",
                "quantity",
                "in_way_to_client",
                "in_way_from_client",
                "tenant_id",
            ],
        )
    finally:
        await conn.close()


async def _fetch(url: str, sql: str, *args):
    conn = await asyncpg.connect(**_asyncpg_kwargs(url))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def test_the_migration_converts_a_populated_history_table_without_losing_a_row(servers):
    name = f"st_part_{secrets.token_hex(4)}"
    asyncio.run(create_database(servers.database_url, name))
    url = _dsn(servers.database_url, database=name)
    try:
        run_migrations(url, "0006")
        asyncio.run(_populate(url, 5000))
        before = asyncio.run(_fetch(url, CHECKSUM))[0]
        run_migrations(url, "0010")
        after = asyncio.run(_fetch(url, CHECKSUM))[0]
        assert tuple(after) == tuple(before) and before[0] == 5001
        placed = asyncio.run(
            _fetch(url, "SELECT tableoid::regclass::text AS p, count(*) FROM stock_history GROUP BY 1 ORDER BY 1")
        )
        names = [r["p"] for r in placed]
        # Every row sits in its own month's partition; nothing in the default one.
        assert "stock_history_default" not in names and len(names) >= 15
        oldest = date.today().replace(day=1)
        oldest = date(oldest.year - 3, oldest.month, 1)
        assert names[0] in (f"stock_history_p{oldest:%Y%m}", f"stock_history_p{_month(oldest, -1):%Y%m}")
        ahead = asyncio.run(
            _fetch(url, "SELECT to_regclass($1) IS NOT NULL AS ok", f"stock_history_p{_month(date.today(), 3):%Y%m}")
        )
        assert ahead[0]["ok"]  # months ahead are ready
        # New points continue the id sequence; the per-run key still refuses a duplicate point of one write.
        top = asyncio.run(_fetch(url, "SELECT max(id) AS m FROM stock_history"))[0]["m"]
        row = asyncio.run(
            _fetch(
                url,
                "INSERT INTO stock_history (variant_id, warehouse_id, product_id, sync_run_id, at, quantity, "
                "tenant_id) SELECT variant_id, warehouse_id, product_id, sync_run_id, at, quantity, tenant_id "
                "FROM stock_history WHERE sync_run_id IS NOT NULL ORDER BY id LIMIT 1 "
                "ON CONFLICT (sync_run_id, variant_id, warehouse_id, at) DO NOTHING RETURNING id",
            )
        )
        assert row == []
        fresh = asyncio.run(
            _fetch(
                url,
                "INSERT INTO stock_history (variant_id, warehouse_id, product_id, at, quantity, tenant_id) "
                "SELECT variant_id, warehouse_id, product_id, now(), 1, tenant_id FROM stock_history LIMIT 1 "
                "RETURNING id",
            )
        )
        assert fresh[0]["id"] > top
        # And back: the downgrade keeps every row too.
        run_migrations(url, "0006", downgrade=True)
        back = asyncio.run(_fetch(url, CHECKSUM))[0]
        assert back[0] == 5002
        kinds = asyncio.run(_fetch(url, "SELECT relkind::text AS k FROM pg_class WHERE relname = 'stock_history'"))
        assert kinds[0]["k"] == "r"
    finally:
        asyncio.run(drop_database(servers.database_url, name))


@pytest.fixture
async def synced(client, settings, marketplace_sandbox, database):
    """A synced tenant (its cells give history rows a real variant) and an owner connection."""
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "wildberries", products=2, warehouses=1, seed=64)
    conn = await connect(client, owner["headers"], seller)
    run = await sync_now(client, settings, owner["headers"], conn["id"])
    assert run["status"] == "succeeded", run
    db = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    try:
        cell = await db.fetchrow(
            "SELECT variant_id, warehouse_id, product_id FROM stock_levels WHERE tenant_id = $1 LIMIT 1",
            uuid.UUID(owner["tenant"]["id"]),
        )
        yield uuid.UUID(owner["tenant"]["id"]), tuple(cell), db
    finally:
        await db.close()
        seller.delete()


async def _insert_point(db: asyncpg.Connection, tenant: uuid.UUID, cell: tuple, at: datetime) -> str:
    return str(
        await db.fetchval(
            "INSERT INTO stock_history (tenant_id, variant_id, warehouse_id, product_id, at, quantity) "
            "VALUES ($1, $2, $3, $4, $5, 3) RETURNING tableoid::regclass::text",
            tenant,
            *cell,
            at,
        )
    )


async def test_the_cron_keeps_months_ready_and_moves_a_stray_row_into_its_month(synced, settings):
    tenant, cell, db = synced
    engine = create_engine(settings)
    try:
        sm = create_sessionmaker(engine)
        await history_partitions({"settings": settings, "sessionmaker": sm})
        today = datetime.now(UTC).date()
        for ahead in range(settings.history_partitions_ahead + 1):
            assert await db.fetchval(
                "SELECT to_regclass($1) IS NOT NULL", f"stock_history_p{_month(today, ahead):%Y%m}"
            )
        assert await history_partitions({"settings": settings, "sessionmaker": sm}) == {}  # nothing twice
        # A point for a month nobody created (as if the cron had stopped for a year) waits in the default
        # partition; creating its month moves it there — the roll-over the cron does each month.
        far = _month(today, 14)
        at = datetime(far.year, far.month, 15, 12, tzinfo=UTC)
        assert await _insert_point(db, tenant, cell, at) == "stock_history_default"
        async with session_scope(sm) as s:
            created = await RetentionSystemRepository(s).ensure_history_partitions(far, 1)
        assert created == {f"stock_history_p{far:%Y%m}": 1}
        placed = await db.fetchval("SELECT tableoid::regclass::text FROM stock_history WHERE at = $1", at)
        assert placed == f"stock_history_p{far:%Y%m}"
        assert await db.fetchval("SELECT count(*) FROM stock_history_default WHERE at = $1", at) == 0
    finally:
        await engine.dispose()


async def test_retention_drops_months_past_every_plans_retention(synced, settings, database):
    tenant, cell, db = synced
    engine = create_engine(settings)
    try:
        sm = create_sessionmaker(engine)
        old = _month(datetime.now(UTC).date(), -12 * 12)  # twelve years ago: past the longest plan (10 years)
        async with session_scope(sm) as s:
            await RetentionSystemRepository(s).ensure_history_partitions(old, 1)
        name = f"stock_history_p{old:%Y%m}"
        at = datetime(old.year, old.month, 2, tzinfo=UTC)
        assert await _insert_point(db, tenant, cell, at) == name
        recent = await db.fetchval("SELECT count(*) FROM stock_history WHERE tenant_id = $1", tenant)
        totals = await retention_sweep({"settings": settings, "sessionmaker": sm})
        assert totals.get("history_partitions", 0) >= 1
        assert not await db.fetchval("SELECT to_regclass($1) IS NOT NULL", name)
        assert await db.fetchval("SELECT count(*) FROM stock_history WHERE tenant_id = $1", tenant) == recent - 1
    finally:
        await engine.dispose()
    # The application role may call the drop, but never for anything newer than 30 days.
    app = await asyncpg.connect(**_asyncpg_kwargs(database["app"]))
    try:
        with pytest.raises(asyncpg.RaiseError, match="refusing"):
            await app.fetch("SELECT * FROM st_history_drop_partitions(now() - interval '10 days')")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await app.execute("DROP TABLE stock_history_default")
    finally:
        await app.close()


def test_settings_default_keeps_three_months_ahead(database, redis_url):
    assert make_settings(database, redis_url).history_partitions_ahead == 3
