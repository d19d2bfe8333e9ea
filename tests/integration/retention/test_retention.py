"""The retention sweep (migration 0006, app/domain/retention): history compacted to end-of-day points past
each plan's retention, old events (with their deliveries) and operational rows deleted, anything pending or
recent kept, and the sweep finishing in several batches."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from app.db.engine import create_engine, create_sessionmaker
from app.domain.retention.jobs import retention_sweep
from tests.conftest import _asyncpg_kwargs, make_settings
from tests.helpers import register
from tests.sync_support import connect, make_seller, sync_now


async def _as_tenant(conn: asyncpg.Connection, tenant_id: str, sql: str, *args) -> None:
    async with conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", tenant_id)
        await conn.execute(sql, *args)


async def _count(conn: asyncpg.Connection, tenant_id: str, sql: str, *args) -> int:
    """``sql`` with ``$1`` = the tenant (the test's owner connection may be a superuser, which RLS ignores)."""
    async with conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', $1, true)", tenant_id)
        return int(await conn.fetchval(sql, uuid.UUID(tenant_id), *args))


@pytest.fixture
async def tenants(client, settings, marketplace_sandbox, database):
    """Two synced tenants: one on a 30-day-history plan (trial), one on a 365-day plan (pro)."""
    out = []
    sellers = []
    for plan, seed in (("trial", 61), ("pro", 62)):
        owner = await register(client)
        seller = make_seller(marketplace_sandbox, "wildberries", products=2, warehouses=1, seed=seed)
        conn = await connect(client, owner["headers"], seller)
        run = await sync_now(client, settings, owner["headers"], conn["id"])
        assert run["status"] == "succeeded", run
        out.append({"tenant": owner["tenant"]["id"], "plan": plan, "connection": conn["id"]})
        sellers.append(seller)
    db = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    try:
        for t in out:
            await db.execute("UPDATE tenants SET plan = $1 WHERE id = $2", t["plan"], uuid.UUID(t["tenant"]))
            async with db.transaction():
                await db.execute("SELECT set_config('app.tenant_id', $1, true)", t["tenant"])
                row = await db.fetchrow(
                    "SELECT variant_id, warehouse_id, product_id FROM stock_levels WHERE tenant_id = $1 LIMIT 1",
                    uuid.UUID(t["tenant"]),
                )
            t["cell"] = tuple(row)
        yield out, db
    finally:
        await db.close()
        for seller in sellers:
            seller.delete()


async def test_the_sweep_compacts_history_and_deletes_what_outlived_its_use(tenants, database, redis_url):
    rows, db = tenants
    trial, pro = rows
    now = datetime.now(UTC)
    day = (now - timedelta(days=40)).replace(hour=8, minute=0, second=0, microsecond=0)  # 11:00 in Moscow
    points = [day, day + timedelta(hours=1), day + timedelta(hours=4), day - timedelta(days=1)]
    for t in rows:
        variant, warehouse, product = t["cell"]
        for i, at in enumerate(points):
            await _as_tenant(
                db,
                t["tenant"],
                "INSERT INTO stock_history (tenant_id, variant_id, warehouse_id, product_id, sync_run_id, at, "
                "quantity) VALUES ($1, $2, $3, $4, NULL, $5, $6)",
                uuid.UUID(t["tenant"]),
                variant,
                warehouse,
                product,
                at,
                10 - i,
            )
        # An old event with a finished delivery (goes, with its delivery), an old one still being delivered
        # (stays), a recent one (stays); an old suppression; an old relayed and an old unrelayed outbox row.
        tid = uuid.UUID(t["tenant"])
        endpoint = uuid.uuid4()
        await _as_tenant(
            db,
            t["tenant"],
            "INSERT INTO webhook_endpoints (id, tenant_id, url, secret_encrypted) "
            "VALUES ($1, $2, 'https://x.test', '')",
            endpoint,
            tid,
        )
        for key, age, status in (("old-done", 40, "succeeded"), ("old-pending", 40, "pending"), ("new", 1, None)):
            event = uuid.uuid5(tid, key)
            await _as_tenant(
                db,
                t["tenant"],
                "INSERT INTO events (id, tenant_id, type, data, created_at) VALUES ($1, $2, 'stock.low', '{}', $3)",
                event,
                tid,
                now - timedelta(days=age),
            )
            if status:
                await _as_tenant(
                    db,
                    t["tenant"],
                    "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, status) "
                    "VALUES ($1, $2, $3, $4, 'stock.low', $5)",
                    uuid.uuid4(),
                    tid,
                    endpoint,
                    event,
                    status,
                )
        await _as_tenant(
            db,
            t["tenant"],
            "INSERT INTO notification_suppressions (id, tenant_id, reason, created_at) VALUES ($1, $2, 'quiet', $3)",
            uuid.uuid4(),
            tid,
            now - timedelta(days=45),
        )
    await db.execute(
        "INSERT INTO outbox (id, job_name, job_id, args, enqueued_at, created_at, updated_at) VALUES "
        "($1, 'x', $2, '{}', $3, $3, $3), ($4, 'x', $5, '{}', NULL, $3, $3)",
        uuid.uuid4(),
        f"retention-test-sent-{uuid.uuid4()}",
        now - timedelta(days=40),
        uuid.uuid4(),
        f"retention-test-unsent-{uuid.uuid4()}",
    )

    # Billing on, so each tenant's own plan sets its history retention; tiny batches, so the run loops.
    settings = make_settings(database, redis_url, stripe_secret_key="sk_test_retention", retention_batch=1)
    engine = create_engine(settings)
    try:
        totals = await retention_sweep({"settings": settings, "sessionmaker": create_sessionmaker(engine)})
    finally:
        await engine.dispose()

    old_history = "SELECT count(*) FROM stock_history WHERE tenant_id = $1 AND at < now() - interval '30 days'"
    # Trial (30 days): of the three points on one day only the last remains; the day before keeps its one.
    assert await _count(db, trial["tenant"], old_history) == 2
    assert (
        await _count(
            db, trial["tenant"], "SELECT quantity FROM stock_history WHERE tenant_id = $1 AND at = $2", points[2]
        )
        == 8
    )
    # Pro (365 days): untouched. Recent history (the syncs): untouched.
    assert await _count(db, pro["tenant"], old_history) == 4
    for t in rows:
        recent = "SELECT count(*) FROM stock_history WHERE tenant_id = $1 AND at > now() - interval '1 day'"
        assert await _count(db, t["tenant"], recent) > 0
        tid = uuid.UUID(t["tenant"])
        ids = [uuid.uuid5(tid, k) for k in ("old-done", "old-pending", "new")]
        kept = "SELECT count(*) FROM events WHERE tenant_id = $1 AND id = $2"
        assert [await _count(db, t["tenant"], kept, i) for i in ids] == [0, 1, 1]
        assert (
            await _count(
                db,
                t["tenant"],
                "SELECT count(*) FROM webhook_deliveries WHERE tenant_id = $1 AND event_id = $2",
                ids[0],
            )
            == 0
        )
        assert await _count(db, t["tenant"], "SELECT count(*) FROM notification_suppressions WHERE tenant_id = $1") == 0
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE job_id LIKE 'retention-test-sent-%'") == 0
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE job_id LIKE 'retention-test-unsent-%'") == 1
    assert totals["stock_history"] == 2 and totals["events"] == 2  # batches of one: it looped until done


async def test_the_app_role_cannot_delete_across_tenants_except_through_the_sweep(database, tenants):
    rows, _ = tenants
    app = await asyncpg.connect(**_asyncpg_kwargs(database["app"]))
    try:
        async with app.transaction():
            await app.execute("SELECT set_config('app.tenant_id', $1, true)", rows[0]["tenant"])
            # Another tenant's rows are invisible, so a DELETE by hand finds nothing to delete.
            done = await app.execute("DELETE FROM stock_history WHERE tenant_id = $1", uuid.UUID(rows[1]["tenant"]))
            assert done == "DELETE 0"
    finally:
        await app.close()
