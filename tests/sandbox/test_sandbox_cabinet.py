"""The sandbox's WB cabinet export, read back by our parser, equals the sandbox's own APIs — and drifts
exactly where the truth was changed."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any

import pytest

from app.domain.reports.cabinet import CabinetExport, parse_cabinet_export
from tests.sandbox._support import MakeSeller, SandboxSeller

MSK = dt.timezone(dt.timedelta(hours=3))


def sizes_by_chrt(seller: SandboxSeller) -> dict[int, tuple[int, str]]:
    body = {"settings": {"cursor": {"limit": 100}, "filter": {"withPhoto": -1}}}
    response = seller.wb("POST", "/content/v2/get/cards/list", json=body)
    assert response.status_code == 200, response.text
    return {s["chrtID"]: (card["nmID"], s["techSize"]) for card in response.json()["cards"] for s in card["sizes"]}


def expected(seller: SandboxSeller, start: dt.date, end: dt.date) -> tuple[dict[Any, int], Counter[Any]]:
    """Stock and orders per (nm, size, cabinet warehouse) as the sandbox's stock and order APIs give them."""
    sizes = sizes_by_chrt(seller)
    kinds = {w["id"]: w["kind"] for w in seller.summary()["warehouses"]}
    stock: dict[Any, int] = defaultdict(int)
    for row in seller.truth():
        nm, size = sizes[int(row["variant_id"])]
        place = "Склад WB" if kinds[row["warehouse_id"]] == "fbw" else "Маркетплейс"
        stock[(nm, size, place)] += row["quantity"]
    response = seller.wb("GET", "/api/v1/supplier/orders", params={"dateFrom": start.isoformat(), "flag": 0})
    assert response.status_code == 200, response.text
    orders: Counter[Any] = Counter()
    for line in response.json():
        if start <= dt.date.fromisoformat(line["date"][:10]) <= end:
            place = line["warehouseName"] if line["warehouseType"] == "Склад WB" else "Маркетплейс"
            orders[(line["nmId"], line["techSize"], place)] += 1
    return stock, orders


def export(seller: SandboxSeller, fmt: str, start: dt.date, end: dt.date) -> CabinetExport:
    params = {"format": fmt, "from": start.isoformat(), "to": end.isoformat()}
    response = seller.http.get(f"/control/sellers/{seller.id}/cabinet-export", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"].endswith(f'.{fmt}"')
    return parse_cabinet_export(response.content)


def today(seller: SandboxSeller) -> dt.date:
    return dt.datetime.fromisoformat(seller.summary()["now"].replace("Z", "+00:00")).astimezone(MSK).date()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_export_reads_back_to_the_sandbox_truth(make_seller: MakeSeller, fmt: str) -> None:
    seller = make_seller(products=40, warehouses=2, seed=5)
    seller.advance(60)
    end = today(seller)
    start = end - dt.timedelta(days=6)
    stock, orders = expected(seller, start, end)
    parsed = export(seller, fmt, start, end)

    got_stock = {r.key: r.stock_units for r in parsed.rows if r.key in stock}
    assert got_stock == dict(stock)  # every stock row is there, with the same units
    assert {r.key: r.ordered_units for r in parsed.rows if r.ordered_units} == dict(orders)
    assert sum(orders.values()) > 0 and any(r.stock_units == 0 for r in parsed.rows)  # zero rows are kept
    assert all(r.is_marketplace == (r.warehouse == "Маркетплейс") for r in parsed.rows)
    others = [r for r in parsed.rows if r.key not in stock]  # FBW shipping warehouses: orders only
    assert others and all(r.stock_units == 0 and r.ordered_units > 0 for r in others)
    if fmt == "xlsx":
        assert parsed.period == (start, end) and parsed.dates[-1] == end and len(parsed.dates) == 7
        last = {(d.nm_id, d.size): d.stock[end] for d in parsed.stock_by_day}
        totals: Counter[Any] = Counter()
        for (nm, size, _place), units in stock.items():
            totals[(nm, size)] += units
        assert last == dict(totals)


def test_a_drifted_truth_shows_exactly_that_drift(make_seller: MakeSeller) -> None:
    seller = make_seller(products=30, warehouses=1, seed=8)
    seller.advance(30)
    end = today(seller)
    start = end - dt.timedelta(days=2)
    before = export(seller, "xlsx", start, end)
    row = next(r for r in seller.truth() if r["warehouse_id"] == "-999999" and r["quantity"] > 3)
    response = seller.http.put(
        f"/control/sellers/{seller.id}/stocks", json={"items": [{**row, "quantity": row["quantity"] - 3}]}
    )
    assert response.status_code == 200, response.text
    after = export(seller, "xlsx", start, end)

    old = {r.key: r.stock_units for r in before.rows}
    new = {r.key: r.stock_units for r in after.rows}
    changed = {k: (old[k], new[k]) for k in old if old[k] != new[k]}
    nm, size = sizes_by_chrt(seller)[int(row["variant_id"])]
    assert changed == {(nm, size, "Склад WB"): (row["quantity"], row["quantity"] - 3)}
    assert [r.ordered_units for r in before.rows] == [r.ordered_units for r in after.rows]
    by_day_old = {(d.nm_id, d.size): d.stock for d in before.stock_by_day}
    by_day_new = {(d.nm_id, d.size): d.stock for d in after.stock_by_day}
    drifted = {k: (by_day_old[k], v) for k, v in by_day_new.items() if v != by_day_old[k]}
    assert list(drifted) == [(nm, size)]
    days_old, days_new = drifted[(nm, size)]
    assert days_new[end] == days_old[end] - 3  # today moved; the past days did not
    assert all(days_new[d] == days_old[d] for d in days_old if d != end)


def test_past_days_are_rebuilt_from_the_stock_log(make_seller: MakeSeller) -> None:
    seller = make_seller(products=30, warehouses=1, seed=9)
    end0 = today(seller)
    first = export(seller, "xlsx", end0, end0)
    result = seller.advance(72)
    assert result["orders"] > 0
    end = today(seller)
    later = export(seller, "xlsx", end0, end)
    yesterday_then = {(d.nm_id, d.size): d.stock[end0] for d in first.stock_by_day}
    # the day that was "today" at the first export ended later: only changes up to its end count now
    assert set(yesterday_then) <= {(d.nm_id, d.size) for d in later.stock_by_day}
    assert any(d.stock[end0] != d.stock[end] for d in later.stock_by_day)


def test_bad_requests_are_problems(make_seller: MakeSeller) -> None:
    seller = make_seller(products=5, warehouses=1)
    ozon = make_seller("ozon", products=5, warehouses=1)
    base = f"/control/sellers/{seller.id}/cabinet-export"
    assert seller.http.get(base, params={"format": "pdf"}).status_code == 422
    assert seller.http.get(base, params={"from": "yesterday"}).status_code == 422
    assert seller.http.get(base, params={"from": "2026-01-10", "to": "2026-01-01"}).status_code == 422
    assert seller.http.get(base, params={"to": "2999-01-01"}).status_code == 422
    assert seller.http.get(base, params={"from": "2020-01-01", "to": "2020-03-01"}).status_code == 422
    response = seller.http.get(f"/control/sellers/{ozon.id}/cabinet-export")
    assert response.status_code == 409 and response.headers["content-type"] == "application/problem+json"
    assert seller.http.get("/control/sellers/nope/cabinet-export").status_code == 404
