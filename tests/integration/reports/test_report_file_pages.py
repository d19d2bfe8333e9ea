"""A stock report file is read in pages of its own (one statement a page, its rows built without the JSON
report's structs): with a page size of a few products, every filter, ``per=size`` and both velocity sources,
the file's rows equal the JSON report's rows read page by page and laid out as a file row
(``tables.stock_values``), value for value and highlight for highlight, across every page boundary."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import pytest

from app.db.engine import create_engine, create_sessionmaker, session_scope
from app.domain.reports import tables
from app.domain.reports.services import ReportService, StockReportQuery
from app.lib.tabular import Marked
from tests.conftest import _asyncpg_kwargs
from tests.helpers import register
from tests.integration.sync.test_sync import _clear_cooldown
from tests.sync_support import connect, make_seller, sync_now

PRODUCTS = 17
FILE_PAGE = 4  # products per statement: 17 products end in a page of 1 (and per size, pages of many rows)
JSON_PAGE = 5


def _reshaped(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Some cells out, some low, the rest a little lower than before (a decrease between history points)."""
    order = sorted({i["product_id"] for i in items})
    out = []
    for i in items:
        n = order.index(i["product_id"])
        quantity = 0 if n % 5 == 0 else 2 if n % 5 == 1 else max(0, i["quantity"] - 3)
        out.append({**i, "quantity": quantity})
    return out


async def _age_history(settings: Any, tenant_id: str) -> None:
    db = await asyncpg.connect(**_asyncpg_kwargs(settings.migration_database_url))
    try:
        await db.execute(
            "UPDATE stock_history SET at = at - interval '1 day' WHERE tenant_id = $1", uuid.UUID(tenant_id)
        )
    finally:
        await db.close()


@pytest.fixture(scope="module")
async def synced(client, settings, marketplace_sandbox):
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "wildberries", products=PRODUCTS, warehouses=2, seed=53)
    conn = await connect(client, owner["headers"], seller)
    run = await sync_now(client, settings, owner["headers"], conn["id"])
    assert run["status"] == "succeeded", run
    # Two syncs' history points, moved into the window (whole days to yesterday): the second one's decreases.
    await _age_history(settings, owner["tenant"]["id"])
    await _clear_cooldown(settings, conn["id"], owner["tenant"]["id"])
    seller.set_stocks(_reshaped(seller.truth()))
    run = await sync_now(client, settings, owner["headers"], conn["id"])
    assert run["status"] == "succeeded", run
    await _age_history(settings, owner["tenant"]["id"])
    yield owner, conn
    seller.delete()


async def _file_and_json(settings: Any, tenant: uuid.UUID, query: StockReportQuery) -> tuple[Any, list[Any]]:
    engine = create_engine(settings, pool_size=2, max_overflow=0)
    try:
        sessionmaker = create_sessionmaker(engine)
        async with session_scope(sessionmaker, tenant) as session:
            service = ReportService(session, tenant, sessionmaker=sessionmaker, file_page=FILE_PAGE)
            grid = await service.stock_report_grid(query, "en")
            pages = [p async for p in service.stock_report_pages(query, page_size=JSON_PAGE)]
    finally:
        await engine.dispose()
    return grid, pages


def _expected(grid: Any, pages: list[Any], per: str) -> tuple[list[list[Any]], set[tuple[int, int, str]]]:
    """The JSON rows as file rows, in the file's warehouse columns (its header names them)."""
    by_label = {w.name: w.warehouse_id for p in pages for w in p.warehouses}
    first = len(tables.stock_product_keys(per)) + 5
    header = grid.values[grid.header_start]
    order = [by_label[label] for label in header[first::3]]
    values, marks = [], set()
    for r, row in enumerate(row for p in pages for row in p.rows):
        out = []
        for c, v in enumerate(tables.stock_values(row, per, order)):
            if type(v) is Marked:
                marks.add((grid.data_start + r, c, v.flag))
                v = v.value
            out.append(v)
        values.append(out)
    return values, marks


async def _assert_same(settings: Any, tenant: uuid.UUID, query: StockReportQuery) -> int:
    grid, pages = await _file_and_json(settings, tenant, query)
    values, marks = _expected(grid, pages, query.per)
    assert grid.values[grid.data_start : grid.data_end] == values, query
    assert set(grid.marks) == marks, query
    return len(values)


def _queries(conn_id: uuid.UUID, warehouse: uuid.UUID, brand: str, article: str) -> list[StockReportQuery]:
    return [
        StockReportQuery(),
        StockReportQuery(window=7, include_cancelled=True, connection_id=conn_id),
        StockReportQuery(window=14, marketplace="wildberries"),
        StockReportQuery(per="size"),
        StockReportQuery(per="size", warehouse_ids=(warehouse,), window=7),
        StockReportQuery(warehouse_ids=(warehouse,)),
        StockReportQuery(stock_status="out"),
        StockReportQuery(stock_status="low"),
        StockReportQuery(stock_status="in_stock", per="size"),
        StockReportQuery(stock_status="low_or_out", warehouse_ids=(warehouse,)),
        StockReportQuery(brand=brand.upper()),
        StockReportQuery(search=article),
    ]


async def _cases(settings: Any, tenant: uuid.UUID, conn_id: uuid.UUID) -> list[StockReportQuery]:
    _grid, pages = await _file_and_json(settings, tenant, StockReportQuery())
    rows = [r for p in pages for r in p.rows]
    assert len(rows) == PRODUCTS
    stocked = next(c.warehouse_id for r in rows for c in r.warehouses if c.stock)
    return _queries(conn_id, stocked, rows[0].brand or "", rows[3].external_id)


async def test_file_pages_equal_the_json_report_with_every_filter(settings, synced):
    owner, conn = synced
    tenant, conn_id = uuid.UUID(owner["tenant"]["id"]), uuid.UUID(conn["id"])
    counts = [await _assert_same(settings, tenant, q) for q in await _cases(settings, tenant, conn_id)]
    assert counts[0] == PRODUCTS and counts[3] > PRODUCTS  # whole report; per size: more rows than products
    assert all(counts[6:9])  # the status filters each keep some rows (out, low, in stock)


async def test_file_pages_equal_the_json_report_where_velocity_comes_from_stock_decreases(settings, synced):
    owner, conn = synced
    tenant, conn_id = uuid.UUID(owner["tenant"]["id"]), uuid.UUID(conn["id"])
    cases = await _cases(settings, tenant, conn_id)
    db = await asyncpg.connect(**_asyncpg_kwargs(settings.migration_database_url))
    try:  # without order lines the connection's velocity comes from its stock history
        await db.execute("DELETE FROM order_lines WHERE connection_id = $1", conn_id)
    finally:
        await db.close()
    _grid, pages = await _file_and_json(settings, tenant, StockReportQuery())
    assert pages[0].method.source == "stock_decreases"
    assert any(r.orders for p in pages for r in p.rows)  # decreases counted: the check below is not vacuous
    for q in cases:
        await _assert_same(settings, tenant, q)


MANY = 4_000  # products: past the writer's first chunk (64 KB), so the client leaves between pages

SEED_MANY = [
    """INSERT INTO connections (id, tenant_id, marketplace, name, credentials_encrypted, status)
       VALUES ($2, $1, 'wildberries', 'Many', '\\x00'::bytea, 'active')""",
    """INSERT INTO warehouses (id, tenant_id, connection_id, external_id, name, kind)
       SELECT gen_random_uuid(), $1, $2, x, 'Склад ' || x, 'fbo' FROM unnest(ARRAY['1', '2']) x""",
    """INSERT INTO products (id, tenant_id, connection_id, marketplace, external_id, vendor_code, title, brand,
                            subject, search_text)
       SELECT gen_random_uuid(), $1, $2, 'wildberries', (300000000 + g)::text, 'M-' || g, 'Товар ' || g, 'B',
              'S', '' FROM generate_series(1, $3::int) g""",
    """INSERT INTO variants (id, tenant_id, connection_id, product_id, external_id, size, barcodes)
       SELECT gen_random_uuid(), $1, $2, p.id, p.external_id, 'M', '{}' FROM products p WHERE p.connection_id = $2""",
    """INSERT INTO stock_levels (tenant_id, variant_id, warehouse_id, connection_id, product_id, quantity)
       SELECT $1, v.id, w.id, $2, v.product_id, 7 FROM variants v JOIN warehouses w ON w.connection_id = $2
       WHERE v.connection_id = $2""",
]


async def test_a_file_left_half_way_gives_its_connection_back(client, settings):
    """The client goes away after the first rows, with the next page's statement in flight: the read stops,
    the snapshot ends, and the only connection of the pool serves the next file whole."""
    owner = await register(client)
    tenant = uuid.UUID(owner["tenant"]["id"])
    db = await asyncpg.connect(**_asyncpg_kwargs(settings.migration_database_url))
    try:
        values = {1: tenant, 2: uuid.uuid4(), 3: MANY}
        for statement in SEED_MANY:
            used = sorted({int(n) for n in re.findall(r"\$(\d)", statement)})
            await db.execute(statement, *[values[n] for n in used])
    finally:
        await db.close()
    engine = create_engine(settings, pool_size=1, max_overflow=0, pool_timeout=5)
    try:
        sessionmaker = create_sessionmaker(engine)

        async def stock_file() -> Any:
            async with session_scope(sessionmaker, tenant) as session:
                service = ReportService(session, tenant, sessionmaker=sessionmaker, file_page=300)
                return await service.stock_report_file(StockReportQuery(), "csv", "en")

        chunks = (await stock_file()).chunks
        assert (await anext(chunks)).startswith(b"\xef\xbb\xbf")  # the header
        assert 0 < (await anext(chunks)).count(b"\n") < MANY  # the first rows; the pages after them are being read
        await chunks.aclose()  # type: ignore[attr-defined]
        body = b"".join([c async for c in (await stock_file()).chunks])
        assert body.count(b"\n") == MANY + 2  # header, the rows, the totals
    finally:
        await engine.dispose()
