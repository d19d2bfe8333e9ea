"""A stock report file is read in pages of its own (one statement a page, its rows built without the JSON
report's structs): with a page size of a few products, every filter, ``per=size`` and both velocity sources,
the file's rows equal the JSON report's rows read page by page and laid out as a file row
(``tables.stock_values``), value for value and highlight for highlight, across every page boundary."""

from __future__ import annotations

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
