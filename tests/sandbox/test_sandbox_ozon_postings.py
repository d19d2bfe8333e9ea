"""Ozon postings in the sandbox: the simulated order book as FBO and FBS postings, paged as Ozon pages."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from tests.sandbox._support import MakeSeller, SandboxSeller

FBO, FBS = "/v2/posting/fbo/list", "/v3/posting/fbs/list"


def window(seller: SandboxSeller, days: float = 32) -> dict[str, str]:
    now = dt.datetime.fromisoformat(seller.summary()["now"].replace("Z", "+00:00"))
    return {
        "since": (now - dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "to": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


def every(
    seller: SandboxSeller, path: str, flt: dict[str, Any], limit: int = 100, **extra: Any
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        response = seller.ozon(path, {"filter": flt, "limit": limit, "offset": offset, **extra})
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        page = result if path == FBO else result["postings"]
        out += page
        offset += limit
        if (path == FBO and len(page) < limit) or (path == FBS and not result["has_next"]):
            return out


def test_postings_are_the_order_book(make_seller: MakeSeller) -> None:
    seller = make_seller("ozon", products=60, warehouses=2, seed=3)
    seller.advance(48)
    flt = window(seller)
    fbo = every(seller, FBO, flt, with_={"analytics_data": True})
    fbs = every(seller, FBS, flt, limit=37)
    assert len(fbo) + len(fbs) == seller.summary()["orders"]  # every simulated order line, once
    numbers = [p["posting_number"] for p in fbo + fbs]
    assert len(set(numbers)) == len(numbers)
    assert all(len(p["products"]) == 1 and p["products"][0]["quantity"] == 1 for p in fbo + fbs)
    statuses = Counter(p["status"] for p in fbo + fbs)
    assert statuses["cancelled"] > 0 and statuses["delivered"] > 0
    kinds = {int(w["id"]): w["kind"] for w in seller.summary()["warehouses"]}
    assert all(kinds[p["delivery_method"]["warehouse_id"]] == "fbs" for p in fbs)
    created = [p["created_at"] for p in fbo]
    assert created == sorted(created)
    assert all(p["in_process_at"] == p["created_at"] for p in fbo)
    cancelled = [p for p in fbs if p["status"] == "cancelled"]
    assert all(p["cancellation"]["cancel_reason_id"] > 0 for p in cancelled)
    # one basket: one order, postings numbered under it
    for p in fbo + fbs:
        assert p["posting_number"].startswith(p["order_number"] + "-")


def test_shapes_filters_and_order(make_seller: MakeSeller) -> None:
    seller = make_seller("ozon", products=40, warehouses=1, seed=4)
    seller.advance(24)
    flt = window(seller)
    page = seller.ozon(FBO, {"filter": flt, "limit": 3, "with": {"analytics_data": True, "financial_data": True}})
    posting = page.json()["result"][0]
    assert set(posting) >= {"order_id", "order_number", "posting_number", "status", "cancel_reason_id", "created_at",
                            "in_process_at", "products", "analytics_data", "financial_data"}  # fmt: skip
    product = posting["products"][0]
    assert set(product) >= {"sku", "name", "quantity", "offer_id", "price", "currency_code"}
    assert float(product["price"]) > 0 and posting["analytics_data"]["warehouse_id"] > 0
    plain = seller.ozon(FBO, {"filter": flt, "limit": 3}).json()["result"][0]
    assert plain["analytics_data"] is None and plain["financial_data"] is None

    everything = every(seller, FBS, flt)
    delivered = every(seller, FBS, {**flt, "status": "delivered"})
    assert delivered and {p["status"] for p in delivered} == {"delivered"}
    assert len(delivered) < len(everything)
    desc = every(seller, FBS, flt, dir="DESC")
    assert [p["posting_number"] for p in desc] == [p["posting_number"] for p in reversed(everything)]
    warehouse = everything[0]["delivery_method"]["warehouse_id"]
    only = every(seller, FBS, {**flt, "warehouse_id": [str(warehouse)]})
    assert only and all(p["delivery_method"]["warehouse_id"] == warehouse for p in only)
    narrow = window(seller, days=0.5)
    recent = every(seller, FBS, narrow)
    assert all(p["in_process_at"] >= narrow["since"] for p in recent) and len(recent) < len(everything)


def test_bad_requests_get_ozon_errors(make_seller: MakeSeller) -> None:
    seller = make_seller("ozon", products=5, warehouses=1)
    flt = window(seller)
    cases = [
        (FBO, {"filter": {"to": flt["to"]}, "limit": 10}),
        (FBO, {"filter": flt, "limit": 0}),
        (FBO, {"filter": flt, "limit": 10, "offset": 20_001}),
        (FBO, {"filter": {**flt, "status": "lost"}, "limit": 10}),
        (FBS, {"filter": {"since": "2024-01-01T00:00:00Z", "to": "2025-06-01T00:00:00Z"}, "limit": 10}),
        (FBS, {"filter": {**flt, "since": "yesterday"}, "limit": 10}),
        (FBS, {"filter": flt, "limit": 10, "dir": "sideways"}),
    ]
    for path, body in cases:
        response = seller.ozon(path, body)
        assert response.status_code == 400, (path, body, response.text)
        assert response.json()["code"] == 3 and response.json()["details"] == []
