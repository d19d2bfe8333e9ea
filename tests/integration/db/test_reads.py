"""The hot read paths (app/db/reads.py, st_product_page): RLS scoping, no scope left behind, recovery from
dropped connections, and the one-round-trip product page on connections that have met no other query."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import asyncpg
import pytest

from app.db.engine import create_engine
from app.db.reads import read_one, read_rows
from app.domain.apikeys.repositories import ApiKeyLookup
from app.domain.catalog.repositories import PRODUCT_PAGE_SQL, product_page
from tests.conftest import _asyncpg_kwargs
from tests.helpers import register
from tests.sync_support import connect, make_seller, sync_now


@pytest.fixture
async def two_tenants(client, settings, marketplace_sandbox):
    owners = []
    sellers = []
    for seed in (41, 42):
        owner = await register(client)
        seller = make_seller(marketplace_sandbox, "wildberries", products=3, warehouses=2, seed=seed)
        conn = await connect(client, owner["headers"], seller)
        run = await sync_now(client, settings, owner["headers"], conn["id"])
        assert run["status"] == "succeeded", run
        page = (await client.get("/api/v1/products?limit=3", headers=owner["headers"])).json()
        owners.append({**owner, "product_ids": [p["id"] for p in page["items"]]})
        sellers.append(seller)
    yield owners
    for seller in sellers:
        seller.delete()


async def _terminate_app_connections(database, *, since: datetime | None = None) -> int:
    """Have the server drop the application role's connections (all, or those opened at or after ``since``)."""
    conn = await asyncpg.connect(**_asyncpg_kwargs(database["maintenance"]))
    try:
        return len(
            await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND usename = $2 "
                "AND backend_start >= coalesce($3, '-infinity'::timestamptz)",
                database["name"],
                "stock_tracker_app",
                since,
            )
        )
    finally:
        await conn.close()


async def _server_now(database) -> datetime:
    conn = await asyncpg.connect(**_asyncpg_kwargs(database["maintenance"]))
    try:
        now: datetime = await conn.fetchval("SELECT clock_timestamp()")
        return now
    finally:
        await conn.close()


async def test_product_page_is_one_statement_under_rls(settings, database, two_tenants):
    a, b = two_tenants
    ta, tb = uuid.UUID(a["tenant"]["id"]), uuid.UUID(b["tenant"]["id"])
    pa, pb = uuid.UUID(a["product_ids"][0]), uuid.UUID(b["product_ids"][0])
    engine = create_engine(settings, pool_size=1, max_overflow=0)  # fresh: nothing decoded on it before
    try:
        rows = await product_page(engine, ta, pa)
        assert rows and all(r["id"] == pa for r in rows)
        assert all(isinstance(r["barcodes"], list) for r in rows if r["variant_id"] is not None)
        assert any(r["warehouse_id"] is not None for r in rows)
        # Another tenant's product under this tenant: nothing.
        assert await product_page(engine, ta, pb) == []
        # The scope lived only as long as the statement: the same (only) connection carries no tenant now.
        assert (await read_one(engine, "SELECT current_setting('app.tenant_id', true) AS t"))["t"] in (None, "")
        assert (await read_one(engine, "SELECT count(*) AS n FROM products"))["n"] == 0  # no tenant: no rows
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(**_asyncpg_kwargs(database["app"]))
    try:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(ta))
            # Inside a transaction scoped to A, asking the function for B is refused: it never switches scope.
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(PRODUCT_PAGE_SQL, tb, pb)
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(ta))
            assert len(await conn.fetch(PRODUCT_PAGE_SQL, ta, pa)) == len(rows)
            # RLS, not the WHERE clause: with B's id in the query, a transaction scoped to A sees nothing.
            assert await conn.fetchval("SELECT count(*) FROM products WHERE tenant_id = $1", tb) == 0
    finally:
        await conn.close()


async def test_a_failed_read_leaves_the_pooled_connection_usable_and_unscoped(settings, two_tenants):
    a = two_tenants[0]
    tenant = uuid.UUID(a["tenant"]["id"])
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        with pytest.raises(asyncpg.UndefinedTableError):
            await read_rows(engine, "SELECT * FROM no_such_table")
        # The one pooled connection went back and serves the next page, scoped anew by the function.
        assert await product_page(engine, tenant, uuid.UUID(a["product_ids"][0]))
        # And the tenant setting did not outlive the statement on that connection.
        async with engine.connect() as plain:
            raw = await plain.exec_driver_sql("SELECT current_setting('app.tenant_id', true)")
            assert raw.scalar() in (None, "")
    finally:
        await engine.dispose()


async def test_reads_recover_when_the_server_drops_every_connection(settings, database, two_tenants):
    from litestar.testing import AsyncTestClient

    from app.server.app import create_app

    a = two_tenants[0]
    tenant = uuid.UUID(a["tenant"]["id"])
    # Only connections opened from here on are dropped: the session's own app keeps its pool.
    since = await _server_now(database)
    engine = create_engine(settings, pool_size=3, max_overflow=0)
    try:
        # Fill the pool, then have the server drop all of it (what a database restart does).
        product = uuid.UUID(a["product_ids"][0])
        await asyncio.gather(*(product_page(engine, tenant, product) for _ in range(3)))
        assert await _terminate_app_connections(database, since=since) >= 3
        assert await product_page(engine, tenant, product)  # retried once on a fresh connection
        assert await _terminate_app_connections(database, since=since) >= 1
        assert await ApiKeyLookup(engine).by_hash("0" * 64) is None  # read_one retries the same way
        assert await read_one(engine, "SELECT 1") is not None
    finally:
        await engine.dispose()
    # Through the API too: the app's pool is dropped; the product page still answers (no 503: hot reads retry).
    app = create_app(settings)
    async with AsyncTestClient(app=app) as c:
        page = f"/api/v1/products/{a['product_ids'][0]}"
        headers = {**a["headers"], "Cache-Control": "no-store"}
        assert (await c.get(page, headers=headers)).status_code == 200
        assert await _terminate_app_connections(database, since=since) >= 1
        resp = await c.get(page, headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == a["product_ids"][0]


async def test_an_orm_request_on_a_dropped_connection_is_a_503_and_the_next_one_works(settings, database):
    """With pre-ping off, the first ORM statement on a connection the server closed fails: the client gets a
    503 problem with Retry-After (never a 500), SQLAlchemy recycles the pool, and the retry succeeds."""
    from litestar.testing import AsyncTestClient

    from app.server.app import create_app

    since = await _server_now(database)  # only this app's connections are dropped, not the session's
    app = create_app(settings)
    async with AsyncTestClient(app=app) as c:
        owner = await register(c)
        for _ in range(2):  # a pooled connection, and the tenant's plan cached by the limiter
            assert (await c.get("/api/v1/connections", headers=owner["headers"])).status_code == 200
        assert await _terminate_app_connections(database, since=since) >= 1
        dropped = await c.get("/api/v1/connections", headers=owner["headers"])
        assert dropped.status_code == 503, dropped.text
        assert dropped.json()["code"] == "database_unavailable" and dropped.headers["retry-after"] == "1"
        assert (await c.get("/api/v1/connections", headers=owner["headers"])).status_code == 200
