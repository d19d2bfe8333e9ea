"""The stock report page by page: over the API with cursors, and through ``ReportService.stock_report_pages``
(what a streaming CSV/XLSX writer consumes) — both give exactly the rows of the report read in one page."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest

from app.db.engine import create_engine, create_sessionmaker, session_scope
from app.domain.reports.services import ReportService, StockReportQuery
from tests.helpers import register
from tests.sync_support import connect, make_seller, sync_now

PRODUCTS = 23
PAGE = 5


@pytest.fixture
async def synced(client, settings, marketplace_sandbox):
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "wildberries", products=PRODUCTS, warehouses=2, seed=29)
    try:
        conn = await connect(client, owner["headers"], seller)
        run = await sync_now(client, settings, owner["headers"], conn["id"])
        assert run["status"] == "succeeded", run
        yield owner, conn
    finally:
        seller.delete()


async def _whole(client, owner, conn) -> dict[str, Any]:
    params = {"window": 14, "limit": 1000, "connection_id": conn["id"]}
    whole = await client.get("/api/v1/reports/stock", params=params, headers=owner["headers"])
    assert whole.status_code == 200, whole.text
    report = whole.json()
    assert len(report["rows"]) == PRODUCTS and report["next_cursor"] is None
    return report


async def test_cursor_pages_over_the_api_add_up_to_the_whole_report(client, synced):
    owner, conn = synced
    whole = await _whole(client, owner, conn)
    rows: list[dict[str, Any]] = []
    warehouses: dict[str, dict[str, Any]] = {}
    cursor, pages = None, 0
    while True:
        params = {"window": 14, "limit": PAGE, "connection_id": conn["id"], **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/api/v1/reports/stock", params=params, headers=owner["headers"])
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["rows"]) <= PAGE and page["method"] == whole["method"]
        rows += page["rows"]
        warehouses.update({w["warehouse_id"]: w for w in page["warehouses"]})
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == -(-PRODUCTS // PAGE)
    assert rows == whole["rows"]
    assert warehouses == {w["warehouse_id"]: w for w in whole["warehouses"]}


async def test_the_service_streams_the_same_rows_page_by_page(client, settings, synced):
    owner, conn = synced
    whole = await _whole(client, owner, conn)
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    try:
        tenant = uuid.UUID(owner["tenant"]["id"])
        async with session_scope(create_sessionmaker(engine), tenant) as session:
            service = ReportService(session, tenant)
            query = StockReportQuery(window=14, connection_id=uuid.UUID(conn["id"]))
            pages = [msgspec.to_builtins(p) async for p in service.stock_report_pages(query, page_size=PAGE)]
    finally:
        await engine.dispose()
    assert [len(p["rows"]) for p in pages] == [PAGE] * (PRODUCTS // PAGE) + [PRODUCTS % PAGE]
    assert [r for p in pages for r in p["rows"]] == whole["rows"]
    assert all(p["next_cursor"] for p in pages[:-1]) and pages[-1]["next_cursor"] is None


async def test_a_malformed_report_cursor_is_a_422_problem(client, account):
    resp = await client.get("/api/v1/reports/stock", params={"cursor": "not!a!cursor"}, headers=account["headers"])
    assert resp.status_code == 422 and resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["code"] == "validation_error" and body["errors"] == [
        {"field": "cursor", "message": "invalid cursor", "source": "query"}
    ]
