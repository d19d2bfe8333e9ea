"""Reconciliation with the WB cabinet export: the sandbox's own export (its truth in the cabinet's format)
reconciles to zero differences, a drifted one shows exactly the drift, a bad file is a 422 naming the line
and column, a file over 20 MB is a 413 — and nothing is stored on error."""

from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from typing import Any

import httpx
import openpyxl
import pytest

from tests.helpers import register
from tests.sync_support import connect, make_seller, sync_now

MSK = dt.timezone(dt.timedelta(hours=3))
FIVE = ["rows_matched", "rows_only_theirs", "rows_only_ours", "rows_with_difference", "total_abs_difference"]


@pytest.fixture(scope="module")
async def synced(client, settings, marketplace_sandbox):
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "wildberries", products=25, warehouses=3, seed=17)
    conn = await connect(client, owner["headers"], seller)
    run = await sync_now(client, settings, owner["headers"], conn["id"])
    assert run["status"] == "succeeded", run
    yield owner, conn, seller
    seller.delete()


def cabinet_export(seller: Any, fmt: str, **period: str) -> bytes:
    with httpx.Client(base_url=seller.base, timeout=60) as h:
        resp = h.get(f"/control/sellers/{seller.id}/cabinet-export", params={"format": fmt, **period})
        assert resp.status_code == 200, resp.text
        return resp.content


async def upload(client, owner, content: bytes, name: str = "export.xlsx", **form: str) -> httpx.Response:
    return await client.post(
        "/api/v1/reconciliations",
        files={"file": (name, content, "application/octet-stream")},
        data=form,
        headers=owner["headers"],
    )


async def all_rows(client, owner, rid: str, **params: Any) -> list[dict[str, Any]]:
    out, cursor = [], None
    while True:
        query = {"limit": 100, **params, **({"cursor": cursor} if cursor else {})}
        resp = await client.get(f"/api/v1/reconciliations/{rid}/rows", params=query, headers=owner["headers"])
        assert resp.status_code == 200, resp.text
        page = resp.json()
        out += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def today() -> dt.date:
    return dt.datetime.now(MSK).date()


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
async def test_the_sandboxs_own_export_reconciles_to_zero_differences(client, synced, fmt):
    owner, conn, seller = synced
    end = today()
    start = end - dt.timedelta(days=6)
    content = cabinet_export(seller, fmt, **{"from": start.isoformat(), "to": end.isoformat()})
    form = {} if fmt == "xlsx" else {"period_from": start.isoformat(), "period_to": end.isoformat()}
    resp = await upload(client, owner, content, f"stock-history.{fmt}", **form)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert list(body["summary"]) == FIVE
    assert body["summary"]["rows_with_difference"] == 0 and body["summary"]["total_abs_difference"] == 0
    assert body["summary"]["rows_only_theirs"] == 0 and body["summary"]["rows_only_ours"] == 0
    assert body["summary"]["rows_matched"] == body["rows_total"] > 0
    assert body["connection_id"] == conn["id"] and body["format"] == fmt
    assert body["period"] == {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "source": "file" if fmt == "xlsx" else "form",
    }
    rows = await all_rows(client, owner, body["id"])
    assert len(rows) == body["rows_total"] and {r["status"] for r in rows} == {"matched"}
    assert any(r["warehouse"] == "Маркетплейс" for r in rows) and any(r["their_orders"] for r in rows)
    assert all(r["their_stock"] == r["our_stock"] and r["their_orders"] == r["our_orders"] for r in rows)
    assert (await client.get(f"/api/v1/reconciliations/{body['id']}", headers=owner["headers"])).json() == body


async def test_a_drifted_file_shows_exactly_the_drift(client, synced):
    owner, _conn, seller = synced
    truth = seller.truth()
    kinds = {w["id"]: w["kind"] for w in seller.summary()["warehouses"]}
    fbw = [i for i in truth if kinds[i["warehouse_id"]] == "fbw" and i["quantity"] > 3]
    fbs = [i for i in truth if kinds[i["warehouse_id"]] == "fbs" and i["quantity"] > 3]
    changes = {
        (fbw[0]["variant_id"], fbw[0]["warehouse_id"]): fbw[0]["quantity"] + 7,
        (fbw[1]["variant_id"], fbw[1]["warehouse_id"]): 0,
        (fbs[0]["variant_id"], fbs[0]["warehouse_id"]): fbs[0]["quantity"] - 2,
    }
    drifted = [{**i, "quantity": changes.get((i["variant_id"], i["warehouse_id"]), i["quantity"])} for i in truth]
    seller.set_stocks(drifted)  # the marketplace changed; we have not synced since
    try:
        resp = await upload(client, owner, cabinet_export(seller, "xlsx"))
        assert resp.status_code == 201, resp.text
        body = resp.json()
        # Per cabinet row: FBW stock sits under "Склад WB"; FBS is summed under "Маркетплейс".
        delta: dict[tuple[str, str], int] = defaultdict(int)
        for (variant, warehouse), new in changes.items():
            old = next(i["quantity"] for i in truth if (i["variant_id"], i["warehouse_id"]) == (variant, warehouse))
            place = "Склад WB" if kinds[warehouse] == "fbw" else "Маркетплейс"
            delta[(variant, place)] += new - old
        assert body["summary"]["rows_with_difference"] == len(delta) == 3
        assert (
            body["summary"]["total_abs_difference"] == sum(abs(d) for d in delta.values()) == 7 + fbw[1]["quantity"] + 2
        )
        assert body["summary"]["rows_only_theirs"] == body["summary"]["rows_only_ours"] == 0
        differing = await all_rows(client, owner, body["id"], with_difference="true")
        assert len(differing) == 3
        assert sorted(r["our_stock"] - r["their_stock"] for r in differing) == sorted(-d for d in delta.values())
        assert all(r["stock_difference"] == r["our_stock"] - r["their_stock"] for r in differing)
        assert all(r["orders_difference"] == 0 for r in differing)
        # The comparison as XLSX: every row, theirs beside ours, the drift flagged.
        xlsx = await client.get(
            f"/api/v1/reconciliations/{body['id']}/rows", params={"format": "xlsx"}, headers=owner["headers"]
        )
        assert xlsx.status_code == 200, xlsx.text
        ws = openpyxl.load_workbook(io.BytesIO(xlsx.content))["Сверка"]
        grid = [list(r) for r in ws.iter_rows(values_only=True)]
        assert grid[0][:3] == ["Статус", "Строка файла", "Артикул продавца"]
        assert len(grid) == 1 + body["rows_total"] + 1 and grid[-1][0] == "Итого"
        assert sum(1 for r in grid[1:-1] if r[9]) == 3  # "Разница остатков"
    finally:
        seller.set_stocks(truth)


async def test_a_malformed_file_is_a_422_naming_line_and_column_and_nothing_is_stored(client, synced):
    owner, _conn, _seller = synced
    before = (await client.get("/api/v1/reconciliations", headers=owner["headers"])).json()["items"]
    lines = [
        "Остатки по КТ по размерам",
        "Артикул продавца;Артикул WB;Размер;Склад;Заказали шт;Остатки на текущий день шт",
        "NOR-1;241775342;M;Склад WB;3;10",
        "NOR-2;241775343;L;Склад WB;много;4",
    ]
    bad = await upload(client, owner, "\n".join(lines).encode(), "export.csv")
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    problem = bad.json()
    assert problem["code"] == "invalid_cabinet_file"
    assert "line 4" in problem["detail"] and "Заказали шт" in problem["detail"]
    assert problem["errors"][0]["field"] == "Заказали шт"
    foreign = await upload(client, owner, b"date,amount\n2026-01-01,5\n", "bank.csv")
    assert foreign.status_code == 422 and foreign.json()["code"] == "invalid_cabinet_file"
    empty = await upload(client, owner, b"", "empty.csv")
    assert empty.status_code == 422
    after = (await client.get("/api/v1/reconciliations", headers=owner["headers"])).json()["items"]
    assert after == before


async def test_files_over_20_mb_are_a_413(client, synced):
    owner, _conn, _seller = synced
    before = (await client.get("/api/v1/reconciliations", headers=owner["headers"])).json()["items"]
    limit = 20 * 1024 * 1024
    just_over = await upload(client, owner, b"x" * (limit + 1), "big.csv")
    assert just_over.status_code == 413 and just_over.json()["code"] == "payload_too_large"
    way_over = await upload(client, owner, b"x" * (limit + 2 * 1024 * 1024), "bigger.csv")
    assert way_over.status_code == 413 and way_over.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/api/v1/reconciliations", headers=owner["headers"])).json()["items"] == before


async def test_the_connection_must_be_a_single_or_named_wb_connection(client, settings, marketplace_sandbox):
    owner = await register(client)
    content = b"\n".join(
        [
            "Артикул продавца;Артикул WB;Размер;Склад;Заказали шт;Остатки на текущий день шт".encode(),
            "NOR-1;1;M;Склад WB;0;1".encode(),
        ]
    )
    none = await upload(client, owner, content, "x.csv")
    assert none.status_code == 422 and none.json()["errors"][0]["field"] == "connection_id"
    ozon = make_seller(marketplace_sandbox, "ozon", products=3, warehouses=1, seed=3)
    try:
        conn = await connect(client, owner["headers"], ozon)
        wrong = await upload(client, owner, content, "x.csv", connection_id=conn["id"])
        assert wrong.status_code == 422 and "Wildberries" in wrong.json()["detail"]
    finally:
        ozon.delete()
    missing = await upload(client, owner, content, "x.csv", connection_id="01900000-0000-7000-8000-000000000000")
    assert missing.status_code == 404
    # Rows the file has and we do not are listed, never guessed.
    wb = make_seller(marketplace_sandbox, "wildberries", products=3, warehouses=1, seed=4)
    try:
        await connect(client, owner["headers"], wb)
        made = await upload(client, owner, content, "x.csv")
        assert made.status_code == 201, made.text
        assert made.json()["summary"]["rows_only_theirs"] == 1
        rows = await all_rows(client, owner, made.json()["id"])
        assert rows[0]["status"] == "only_theirs" and "no product" in rows[0]["note"]
        assert made.json()["period"]["source"] == "default"
    finally:
        wb.delete()
    other = await register(client, "Other")
    assert (
        await client.get(f"/api/v1/reconciliations/{made.json()['id']}", headers=other["headers"])
    ).status_code == 404
