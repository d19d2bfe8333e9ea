"""Restock recommendations: velocity over 7/14/30 days from order lines (WB's aggregate "Склад WB" gets the
orders of the warehouses it stands for), days of cover, units to ship to the target cover from the
organization's lead time + safety days or the product's own, every input in the answer; CSV/XLSX; Ozon's
velocity from its postings."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from typing import Any

import openpyxl
import pytest

from tests.helpers import register
from tests.sync_support import connect, make_seller, sync_now


@pytest.fixture(scope="module")
async def synced(client, settings, marketplace_sandbox):
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "wildberries", products=12, warehouses=2, seed=37)
    seller.set_stocks([{**i, "quantity": min(i["quantity"], 2)} for i in seller.truth()])  # some need a restock
    conn = await connect(client, owner["headers"], seller)
    assert (await sync_now(client, settings, owner["headers"], conn["id"]))["status"] == "succeeded"
    yield owner, conn
    seller.delete()


async def restock(client, owner, **params: Any) -> dict[str, Any]:
    resp = await client.get("/api/v1/reports/restock", params={"limit": 1000, **params}, headers=owner["headers"])
    assert resp.status_code == 200, resp.text
    return resp.json()


def check_formula(row: dict[str, Any], window: int) -> None:
    orders = row[f"orders_{window}"]
    assert row["velocity_per_day"] == row[f"velocity_{window}"] == round(orders / window, 4)
    assert row["target_days"] == row["lead_time_days"] + row["safety_days"]
    assert row["target_units"] == math.ceil(orders * row["target_days"] / window - 1e-9)
    if row["available"] is None:
        assert row["units_to_ship"] is None and "no stock row" in row["note"]
    else:
        assert row["units_to_ship"] == max(0, row["target_units"] - row["available"])
        if orders:
            assert row["days_of_cover"] == round(row["available"] / (orders / window), 1)


async def test_recommendations_carry_their_inputs_and_follow_the_formula(client, synced):
    owner, conn = synced
    body = await restock(client, owner, connection_id=conn["id"], window=14)
    method = body["method"]
    assert method["window_days"] == 14 and method["source"] == "orders"
    assert method["organization"] == {"lead_time_days": 14, "safety_days": 7}
    assert [w["days"] for w in method["windows"]] == [7, 14, 30]
    assert "ceil" in method["formula"] and method["days_of_cover_formula"].startswith("days_of_cover")
    assert body["rows"]
    for row in body["rows"]:
        check_formula(row, 14)
        assert row["settings_source"] == "organization" and row["velocity_source"] == "orders"
        assert row["orders_7"] <= row["orders_14"] <= row["orders_30"]


async def test_the_fbw_aggregate_gets_the_orders_of_the_warehouses_it_stands_for(client, synced):
    owner, conn = synced
    report = (
        await client.get(
            "/api/v1/reports/stock", params={"connection_id": conn["id"], "limit": 1000}, headers=owner["headers"]
        )
    ).json()
    kinds = {w["warehouse_id"]: (w["kind"], w["name"]) for w in report["warehouses"]}
    fbo_orders: dict[str, int] = defaultdict(int)
    for r in report["rows"]:
        for c in r["warehouses"]:
            if kinds[c["warehouse_id"]][0] == "fbo":
                fbo_orders[r["product_id"]] += c["orders"]
    body = await restock(client, owner, connection_id=conn["id"], window=30)
    aggregate = [r for r in body["rows"] if r["warehouse_name"] == "Склад WB"]
    assert aggregate and any(r["orders_30"] for r in aggregate)
    for r in aggregate:
        assert r["orders_30"] == fbo_orders[r["product_id"]]
        if r["orders_30"]:
            assert "aggregate" in (r["note"] or "")
    # No separate row for a shipping warehouse whose stock the aggregate holds.
    assert {r["warehouse_kind"] for r in body["rows"]} <= {"fbo", "fbs"}
    assert all(r["available"] is not None for r in body["rows"] if r["warehouse_kind"] == "fbo")


async def test_targets_come_from_the_organization_or_the_product(client, synced):
    owner, conn = synced
    h = owner["headers"]
    changed = await client.patch("/api/v1/reports/settings", json={"lead_time_days": 10, "safety_days": 5}, headers=h)
    assert changed.status_code == 200 and changed.json()["lead_time_days"] == 10
    body = await restock(client, owner, connection_id=conn["id"])
    product = body["rows"][0]["product_id"]
    assert all(r["target_days"] == 15 for r in body["rows"])
    own = await client.put(
        f"/api/v1/products/{product}/restock-settings", json={"lead_time_days": 30, "safety_days": None}, headers=h
    )
    assert own.status_code == 200, own.text
    assert own.json() == {
        "product_id": product, "lead_time_days": 30, "safety_days": None, "effective_lead_time_days": 30,
        "effective_safety_days": 5,
    }  # fmt: skip
    body = await restock(client, owner, connection_id=conn["id"])
    for r in body["rows"]:
        expected = (30, 5, "product") if r["product_id"] == product else (10, 5, "organization")
        assert (r["lead_time_days"], r["safety_days"], r["settings_source"]) == expected
        check_formula(r, 30)
    only = await restock(client, owner, connection_id=conn["id"], only_to_ship="true")
    assert only["rows"] and all(r["units_to_ship"] for r in only["rows"])
    assert len(only["rows"]) == sum(1 for r in body["rows"] if r["units_to_ship"])
    assert (await client.delete(f"/api/v1/products/{product}/restock-settings", headers=h)).status_code == 204
    assert (await client.get(f"/api/v1/products/{product}/restock-settings", headers=h)).json()[
        "lead_time_days"
    ] is None
    bad = await client.put(f"/api/v1/products/{product}/restock-settings", json={"lead_time_days": -1}, headers=h)
    assert bad.status_code == 422
    other = await register(client, "Other")
    assert (
        await client.get(f"/api/v1/products/{product}/restock-settings", headers=other["headers"])
    ).status_code == 404
    await client.patch("/api/v1/reports/settings", json={"lead_time_days": 14, "safety_days": 7}, headers=h)


async def test_restock_files_hold_the_same_rows(client, synced):
    owner, conn = synced
    body = await restock(client, owner, connection_id=conn["id"])
    as_csv = await client.get(
        "/api/v1/reports/restock", params={"connection_id": conn["id"], "format": "csv", "lang": "en"},
        headers=owner["headers"],
    )  # fmt: skip
    lines = list(csv.reader(io.StringIO(as_csv.content.decode("utf-8-sig"))))
    assert lines[0][:6] == ["Brand", "Subject", "Vendor code", "Marketplace ID", "Title", "Warehouse"]
    assert len(lines) == 1 + len(body["rows"]) + 1
    assert [int(line[17] or 0) for line in lines[1:-1]] == [r["units_to_ship"] or 0 for r in body["rows"]]
    as_xlsx = await client.get(
        "/api/v1/reports/restock", params={"connection_id": conn["id"], "format": "xlsx"}, headers=owner["headers"]
    )
    ws = openpyxl.load_workbook(io.BytesIO(as_xlsx.content))["Поставки"]
    grid = [list(r) for r in ws.iter_rows(values_only=True)]
    assert grid[0][17] == "Отгрузить" and len(grid) == 1 + len(body["rows"]) + 1
    assert [g[7] for g in grid[1:-1]] == [r["available"] for r in body["rows"]]


async def test_ozon_velocity_comes_from_its_postings(client, settings, marketplace_sandbox):
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "ozon", products=10, warehouses=2, seed=43)
    try:
        conn = await connect(client, owner["headers"], seller)
        run = await sync_now(client, settings, owner["headers"], conn["id"])
        assert run["status"] == "succeeded", run
        assert run["stages"]["orders"]["status"] == "success" and run["stages"]["orders"]["counts"]["orders"] > 0
        assert run["stages"]["write_orders"]["counts"]["orders_written"] > 0
        body = await restock(client, owner, connection_id=conn["id"])
        assert body["method"]["source"] == "orders"
        assert all(r["velocity_source"] == "orders" for r in body["rows"])
        assert any(r["orders_30"] for r in body["rows"])
        product = body["rows"][0]["product_id"]
        cover = await client.get(f"/api/v1/products/{product}/days-of-cover", headers=owner["headers"])
        assert cover.json()["method"]["source"] == "orders"
    finally:
        seller.delete()
