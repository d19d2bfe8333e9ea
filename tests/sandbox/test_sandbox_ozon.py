"""Ozon endpoints: auth, cursors (last_id, cursor, has_next), validation, consistency with the truth."""

from __future__ import annotations

from typing import Any

import httpx

from tests.sandbox._support import MakeSeller, SandboxSeller


def pages(seller: SandboxSeller, path: str, body: dict[str, Any], *, items: str, cursor: str) -> list[Any]:
    """Follow a cursor until an empty page (product list: `result.last_id`; others: `cursor`)."""
    out: list[Any] = []
    token = ""
    for _ in range(10_000):
        response = seller.ozon(path, {**body, cursor: token})
        assert response.status_code == 200, response.text
        data = response.json()
        data = data.get("result", data)
        out.extend(data[items])
        token = data["last_id" if cursor == "last_id" else "cursor"]
        if not data[items] or data.get("has_next") is False:
            return out
    raise AssertionError("the cursor never ended")


def test_ozon_auth(make_seller: MakeSeller, http: httpx.Client) -> None:
    seller = make_seller("ozon", products=5)
    assert seller.ozon("/v2/warehouse/list", {"limit": 5}).status_code == 200
    missing = http.post("/ozon/v2/warehouse/list", json={"limit": 5})
    assert missing.status_code == 401
    assert missing.json()["code"] == 16
    # the live API answers a wrong key with 404 and gRPC code 5 (NOT_FOUND), not with 401/403
    wrong = seller.ozon("/v2/warehouse/list", {"limit": 5}, headers={"Api-Key": "nope"})
    assert wrong.status_code == 404
    assert wrong.json() == {
        "code": 5, "message": "Invalid Api-Key, please check the key and try again", "details": [],
    }  # fmt: skip
    unknown = seller.ozon("/v2/warehouse/list", {"limit": 5}, headers={"Client-Id": "1"})
    assert unknown.status_code == 404
    not_a_number = seller.ozon("/v2/warehouse/list", {"limit": 5}, headers={"Client-Id": "abc"})
    assert not_a_number.status_code == 400
    assert not_a_number.json()["code"] == 3


def test_product_list_last_id_paging(make_seller: MakeSeller) -> None:
    seller = make_seller("ozon", products=123, seed=4)
    items = pages(
        seller, "/v3/product/list", {"filter": {"visibility": "ALL"}, "limit": 10}, items="items", cursor="last_id"
    )
    ids = [i["product_id"] for i in items]
    assert len(ids) == 123
    assert ids == sorted(set(ids))
    first = seller.ozon("/v3/product/list", {"limit": 1000}).json()["result"]
    assert first["total"] == 123
    one = seller.ozon("/v3/product/list", {"filter": {"offer_id": [items[5]["offer_id"]]}, "limit": 10}).json()
    assert [i["product_id"] for i in one["result"]["items"]] == [ids[5]]
    by_id = seller.ozon("/v3/product/list", {"filter": {"product_id": [str(ids[9])]}, "limit": 10}).json()
    assert [i["product_id"] for i in by_id["result"]["items"]] == [ids[9]]
    archived = seller.ozon("/v3/product/list", {"filter": {"visibility": "ARCHIVED"}, "limit": 10}).json()
    assert archived["result"]["items"] == []
    for bad in ({"limit": 0}, {"limit": 1001}, {"limit": 5, "last_id": "%%%"}, {"limit": "x"}):
        response = seller.ozon("/v3/product/list", bad)
        assert response.status_code == 400, bad
        assert response.json()["code"] == 3


def test_product_info_list(make_seller: MakeSeller) -> None:
    seller = make_seller("ozon", products=30)
    ids = [i["product_id"] for i in seller.ozon("/v3/product/list", {"limit": 5}).json()["result"]["items"]]
    items = seller.ozon("/v3/product/info/list", {"product_id": [str(i) for i in ids]}).json()["items"]
    assert [i["id"] for i in items] == ids
    for item in items:
        assert item["name"]
        assert item["offer_id"]
        assert item["barcodes"] == [f"OZN{item['sku']}"]
    by_sku = seller.ozon("/v3/product/info/list", {"sku": [items[0]["sku"]]}).json()["items"]
    assert [i["id"] for i in by_sku] == [ids[0]]
    assert seller.ozon("/v3/product/info/list", {"product_id": list(range(1001))}).status_code == 400


def _truth_by(seller: SandboxSeller) -> dict[tuple[int, int], int]:
    return {(int(r["variant_id"]), int(r["warehouse_id"])): r["quantity"] for r in seller.truth()}


def test_stocks_per_product_and_per_warehouse_match_the_truth(make_seller: MakeSeller) -> None:
    seller = make_seller("ozon", products=180, warehouses=3, seed=8)
    seller.advance(24)
    truth = _truth_by(seller)
    kinds = {int(w["id"]): w["kind"] for w in seller.summary()["warehouses"]}

    fbs = pages(seller, "/v2/product/info/stocks-by-warehouse/fbs", {"limit": 37}, items="products", cursor="cursor")
    fbo = pages(seller, "/v1/product/info/stocks-by-warehouse/fbo", {"limit": 41}, items="products", cursor="cursor")
    seen = {(r["sku"], r["warehouse_id"]): r["free_stock"] for r in fbs}
    assert len(seen) == len(fbs), "no row twice"
    assert all(r["present"] - r["reserved"] == r["free_stock"] for r in fbs)
    seen.update({(r["sku"], r["warehouse_id"]): r["present"] - r["reserved"] for r in fbo})
    assert len(seen) == len(fbs) + len(fbo)
    assert seen == truth
    assert {kinds[w] for _, w in truth} == {"fbs", "fbo"}

    per_product = pages(seller, "/v4/product/info/stocks", {"filter": {}, "limit": 50}, items="items", cursor="cursor")
    assert len(per_product) == 180
    for item in per_product:
        for stock in item["stocks"]:
            expected = sum(q for (sku, w), q in truth.items() if sku == stock["sku"] and kinds[w] == stock["type"])
            assert stock["present"] - stock["reserved"] == expected
            if stock["type"] == "fbs":
                assert all(isinstance(w, str) for w in stock["warehouse_ids"])
    assert seller.ozon("/v4/product/info/stocks", {"limit": 10}).status_code == 400
    assert seller.ozon("/v4/product/info/stocks", {"filter": {}, "limit": 1001}).status_code == 400


def test_analytics_stocks(make_seller: MakeSeller) -> None:
    seller = make_seller("ozon", products=60)
    fbo = pages(seller, "/v1/product/info/stocks-by-warehouse/fbo", {"limit": 1000}, items="products", cursor="cursor")
    skus = sorted({r["sku"] for r in fbo})[:100]
    items = seller.ozon("/v1/analytics/stocks", {"skus": [str(s) for s in skus]}).json()["items"]
    assert {i["sku"] for i in items} == set(skus)
    expected = {(r["sku"], r["warehouse_id"]): r["present"] - r["reserved"] for r in fbo if r["sku"] in set(skus)}
    assert {(i["sku"], i["warehouse_id"]): i["available_stock_count"] for i in items} == expected
    assert all(i["warehouse_name"] and i["cluster_name"] for i in items)
    assert seller.ozon("/v1/analytics/stocks", {}).status_code == 400
    assert seller.ozon("/v1/analytics/stocks", {"skus": [str(s) for s in range(101)]}).status_code == 400


def test_warehouse_list(make_seller: MakeSeller) -> None:
    seller = make_seller("ozon", products=5, warehouses=5)
    listed = pages(seller, "/v2/warehouse/list", {"limit": 2}, items="warehouses", cursor="cursor")
    fbs = [int(w["id"]) for w in seller.summary()["warehouses"] if w["kind"] == "fbs"]
    assert [w["warehouse_id"] for w in listed] == fbs
    assert seller.ozon("/v2/warehouse/list", {"limit": 201}).status_code == 400
    assert seller.ozon("/v2/warehouse/list", {}).status_code == 400


def test_unknown_ozon_path(make_seller: MakeSeller) -> None:
    seller = make_seller("ozon", products=5)
    response = seller.ozon("/v1/product/info/stocks-by-warehouse/fbs", {"sku": ["1"]})
    assert response.status_code == 404
    assert set(response.json()) == {"code", "message", "details"}
