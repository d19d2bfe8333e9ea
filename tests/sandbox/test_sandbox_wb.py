"""Wildberries endpoints: pagination, limits and errors, FBW/FBS stock, orders, auth, truth consistency."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.sandbox._support import MakeSeller, SandboxSeller

CARDS = "/content/v2/get/cards/list"
FBW = "/api/analytics/v1/stocks-report/wb-warehouses"
FBS = "/api/analytics/v1/stocks-report/seller-warehouses"


def all_cards(seller: SandboxSeller, *, ascending: bool, limit: int = 100) -> list[dict[str, Any]]:
    cards: list[dict[str, Any]] = []
    cursor: dict[str, Any] = {"limit": limit}
    while True:
        body = {"settings": {"sort": {"ascending": ascending}, "cursor": cursor, "filter": {"withPhoto": -1}}}
        response = seller.wb("POST", CARDS, json=body)
        assert response.status_code == 200, response.text
        page = response.json()
        cards.extend(page["cards"])
        assert page["cursor"]["total"] == len(page["cards"])
        if page["cursor"]["total"] < limit:
            return cards
        cursor = {"limit": limit, "updatedAt": page["cursor"]["updatedAt"], "nmID": page["cursor"]["nmID"]}


def fbw_rows(seller: SandboxSeller, limit: int = 250_000) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        response = seller.wb("POST", FBW, json={"limit": limit, "offset": offset})
        assert response.status_code == 200, response.text
        items = response.json()["data"]["items"]
        rows.extend(items)
        if len(items) < limit:
            return rows
        offset += limit


@pytest.mark.parametrize("ascending", [True, False])
def test_card_cursor_covers_every_card_once(make_seller: MakeSeller, ascending: bool) -> None:
    seller = make_seller(products=1234, seed=3)
    cards = all_cards(seller, ascending=ascending)
    ids = [c["nmID"] for c in cards]
    assert len(ids) == 1234
    assert len(set(ids)) == 1234
    keys = [(c["updatedAt"], c["nmID"]) for c in cards]
    assert keys == sorted(keys, reverse=not ascending)
    truth_products = {r["product_id"] for r in seller.truth()}
    assert {str(i) for i in ids} == truth_products


def test_card_fields_and_variants(make_seller: MakeSeller) -> None:
    seller = make_seller(products=60)
    cards = all_cards(seller, ascending=True)
    sizes = [s for c in cards for s in c["sizes"]]
    per_card = Counter(len(c["sizes"]) for c in cards)
    assert set(per_card) <= {1, 2, 3, 4}
    assert len(per_card) > 1
    assert all(len(s["skus"][0]) == 13 for s in sizes)
    assert len({s["chrtID"] for s in sizes}) == len(sizes)
    card = cards[0]
    for key in ("nmID", "imtID", "vendorCode", "brand", "title", "subjectName", "photos", "createdAt", "updatedAt"):
        assert card[key], key


def test_touch_moves_card_to_the_end_of_an_ascending_export(make_seller: MakeSeller) -> None:
    seller = make_seller(products=30)
    first = all_cards(seller, ascending=True)[0]
    response = seller.http.post(f"/control/sellers/{seller.id}/products/{first['nmID']}/touch")
    assert response.status_code == 200, response.text
    cards = all_cards(seller, ascending=True)
    assert cards[-1]["nmID"] == first["nmID"]
    assert cards[-1]["updatedAt"] > first["updatedAt"]
    assert len(cards) == 30


def test_cards_search_and_limits(make_seller: MakeSeller) -> None:
    seller = make_seller(products=40)
    card = all_cards(seller, ascending=True)[7]
    for text in (card["vendorCode"], str(card["nmID"]), card["sizes"][0]["skus"][0]):
        body = {"settings": {"cursor": {"limit": 10}, "filter": {"textSearch": text, "withPhoto": -1}}}
        found = seller.wb("POST", CARDS, json=body).json()["cards"]
        assert [c["nmID"] for c in found] == [card["nmID"]], text
    for bad in ({"settings": {"cursor": {"limit": 101}}}, {"settings": {"cursor": {"limit": 0}}}):
        response = seller.wb("POST", CARDS, json=bad)
        assert response.status_code == 400
        assert response.json()["error"] is True
        assert response.json()["data"] is None
    garbage = seller.wb("POST", CARDS, content=b"{{", headers={"Content-Type": "application/json"})
    assert garbage.status_code == 400
    assert garbage.json()["errorText"] == "Request body can not be decoded"


def test_fbw_offset_paging_and_fbs_only_variants(make_seller: MakeSeller) -> None:
    seller = make_seller(products=300, warehouses=2, seed=11)
    whole = fbw_rows(seller)
    paged = fbw_rows(seller, limit=97)
    assert paged == whole
    assert {r["warehouseId"] for r in whole} == {-999999}
    assert {r["warehouseName"] for r in whole} == {"Склад WB"}
    assert all(r["inWayToClient"] >= 0 and r["inWayFromClient"] >= 0 for r in whole)
    assert any(r["inWayToClient"] > 0 for r in whole)
    assert seller.wb("POST", FBW, json={"limit": 250_001}).status_code == 400
    assert seller.wb("POST", FBW, json={"nmIds": list(range(1001))}).status_code == 400

    fbs = seller.wb("POST", FBS, json={}).json()["data"]["items"]
    fbw_variants = {r["chrtId"] for r in whole}
    fbs_only = {r["chrtId"] for r in fbs} - fbw_variants
    assert fbs_only, "the simulation must include sizes stocked only on seller warehouses"
    card_sizes = {s["chrtID"] for c in all_cards(seller, ascending=True) for s in c["sizes"]}
    assert fbs_only <= card_sizes

    nm = whole[0]["nmId"]
    filtered = seller.wb("POST", FBW, json={"nmIds": [nm]}).json()["data"]["items"]
    assert filtered == [r for r in whole if r["nmId"] == nm]
    assert seller.wb("POST", FBS, json={"offset": 10**6}).status_code == 204


def test_marketplace_stocks(make_seller: MakeSeller) -> None:
    seller = make_seller(products=700, warehouses=2)
    warehouses = seller.wb("GET", "/api/v3/warehouses").json()
    assert len(warehouses) == 2
    assert {"name", "officeId", "id", "cargoType", "deliveryType", "isDeleting", "isProcessing"} == set(warehouses[0])
    truth = seller.truth()
    chrt_ids = sorted({int(r["variant_id"]) for r in truth})
    assert len(chrt_ids) > 1000
    wid = warehouses[0]["id"]
    expected = {int(r["variant_id"]): r["quantity"] for r in truth if r["warehouse_id"] == str(wid)}
    got: dict[int, int] = {}
    for i in range(0, len(chrt_ids), 1000):
        response = seller.wb("POST", f"/api/v3/stocks/{wid}", json={"chrtIds": chrt_ids[i : i + 1000]})
        assert response.status_code == 200, response.text
        got.update({s["chrtId"]: s["amount"] for s in response.json()["stocks"]})
    assert got == expected

    too_many = seller.wb("POST", f"/api/v3/stocks/{wid}", json={"chrtIds": chrt_ids[:1001]})
    assert too_many.status_code == 400
    by_sku = seller.wb("POST", f"/api/v3/stocks/{wid}", json={"skus": ["2000000000015"]})
    assert by_sku.status_code == 400
    assert by_sku.json()["code"] == "SKUUploadDisabled"
    assert by_sku.json()["message"] == "Uploading stock is not allowed by 'sku'. Please use the 'chrtId' key"
    unknown = seller.wb("POST", "/api/v3/stocks/1", json={"chrtIds": chrt_ids[:5]})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "NotFound"


def test_truth_matches_marketplace_endpoints(make_seller: MakeSeller) -> None:
    seller = make_seller(products=250, warehouses=3, seed=21)
    seller.advance(30)
    truth = {(r["product_id"], r["variant_id"], r["warehouse_id"]): r["quantity"] for r in seller.truth()}
    seen: dict[tuple[str, str, str], int] = {}
    for row in fbw_rows(seller):
        seen[(str(row["nmId"]), str(row["chrtId"]), str(row["warehouseId"]))] = row["quantity"]
    for row in seller.wb("POST", FBS, json={}).json()["data"]["items"]:
        seen[(str(row["nmId"]), str(row["chrtId"]), str(row["warehouseId"]))] = row["quantity"]
    assert seen == truth


def test_orders_and_advance_drain_stock(make_seller: MakeSeller) -> None:
    seller = make_seller(products=300, warehouses=1, seed=9)
    lines = seller.wb("GET", "/api/v1/supplier/orders", params={"dateFrom": "2000-01-01"}).json()
    assert lines, "thirty days of history"
    assert len({line["srid"] for line in lines}) == len(lines)
    assert {line["warehouseType"] for line in lines} == {"Склад WB", "Склад продавца"}
    assert any(line["isCancel"] for line in lines)
    assert all(line["cancelDate"] == "0001-01-01T00:00:00" for line in lines if not line["isCancel"])
    assert [line["lastChangeDate"] for line in lines] == sorted(line["lastChangeDate"] for line in lines)
    baskets = Counter(line["gNumber"] for line in lines)
    assert max(baskets.values()) > 1

    before_total = sum(r["quantity"] for r in seller.truth())
    last_change = lines[-1]["lastChangeDate"]
    result = seller.advance(72)
    assert result["orders"] > 0
    after_total = sum(r["quantity"] for r in seller.truth())
    assert after_total - before_total == result["returned"] + result["restocked_units"] - result["orders"]
    newer = seller.wb("GET", "/api/v1/supplier/orders", params={"dateFrom": last_change}).json()
    new_srids = {line["srid"] for line in newer} - {line["srid"] for line in lines}
    assert len(new_srids) == result["orders"]

    day = newer[-1]["date"][:10]
    same_day = seller.wb("GET", "/api/v1/supplier/orders", params={"dateFrom": day, "flag": 1}).json()
    assert same_day
    assert {line["date"][:10] for line in same_day} == {day}


def test_orders_bad_parameters(make_seller: MakeSeller) -> None:
    seller = make_seller(products=5)
    missing = seller.wb("GET", "/api/v1/supplier/orders")
    assert missing.status_code == 400
    assert missing.json() == {"errors": ["dateFrom: field required"]}
    invalid = seller.wb("GET", "/api/v1/supplier/orders", params={"dateFrom": "yesterday"})
    assert invalid.status_code == 400
    assert invalid.json() == {"errors": "dateFrom: Value not validated"}


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    return body


def test_wb_auth(make_seller: MakeSeller, http: Any) -> None:
    seller = make_seller()
    assert seller.wb("GET", "/ping").json()["Status"] == "OK"
    bearer = http.get("/wb/ping", headers={"Authorization": f"Bearer {seller.credentials['token']}"})
    assert bearer.status_code == 200
    missing = _problem(http.get("/wb/ping"), 401)
    assert missing["title"] == "unauthorized"
    assert missing["detail"].startswith("token problem;")
    assert missing["origin"].startswith("s2s-api-auth-")
    assert {"code", "requestId", "statusText", "timestamp"} <= missing.keys()
    garbage = _problem(http.get("/wb/ping", headers={"Authorization": "not-a-token"}), 401)
    assert garbage["detail"].startswith("token problem; token is malformed")
    token = seller.credentials["token"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    _problem(http.get("/wb/ping", headers={"Authorization": forged}), 401)

    content_only = make_seller(token_categories=["content"])
    assert content_only.wb("POST", CARDS, json={}).status_code == 200
    assert content_only.wb("GET", "/ping").status_code == 200
    for method, path in [("POST", FBW), ("GET", "/api/v3/warehouses"), ("GET", "/api/v1/supplier/orders")]:
        body = _problem(content_only.wb(method, path, json={}), 401)
        assert body["detail"] == "token scope not allowed"

    expired = make_seller(token_expires_in_days=-1)
    assert _problem(expired.wb("GET", "/ping"), 401)["detail"] == "token problem; token is expired"
    base = make_seller(token_type="base")
    assert _problem(base.wb("POST", FBW, json={}), 403)["detail"] == "base token is not allowed"
    assert base.wb("POST", CARDS, json={}).status_code == 200


def test_unknown_wb_path(make_seller: MakeSeller) -> None:
    seller = make_seller()
    response = seller.wb("GET", "/api/v1/supplier/stocks", params={"dateFrom": "2020-01-01"})
    assert _problem(response, 404)["title"] == "path not found"
