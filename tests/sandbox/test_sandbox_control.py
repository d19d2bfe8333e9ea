"""The control API contract: sellers, the true stock, time, faults; errors are problem documents."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.sandbox._support import MakeSeller


def _jwt_payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_create_wb_seller_returns_a_wb_shaped_token(make_seller: MakeSeller) -> None:
    seller = make_seller("wildberries", products=30, warehouses=3, seed=5)
    assert seller.created["marketplace"] == "wildberries"
    payload = _jwt_payload(seller.credentials["token"])
    assert payload["acc"] == 3
    assert payload["for"] == "self"
    assert payload["t"] is False
    # default categories: Content (1), Analytics (2), Marketplace (4), Statistics (5)
    assert payload["s"] == (1 << 1) | (1 << 2) | (1 << 4) | (1 << 5)
    assert isinstance(payload["exp"], int)
    assert isinstance(payload["iat"], int)
    assert payload["exp"] - payload["iat"] == 180 * 86400
    assert {"id", "sid"} <= payload.keys()

    summary = seller.summary()
    assert summary["products"] == 30
    assert [w["kind"] for w in summary["warehouses"]] == ["fbw", "fbs", "fbs", "fbs"]
    assert summary["warehouses"][0]["id"] == "-999999"
    assert summary["stats"] == {"requests": {}, "rate_limited": {}, "faults": {}, "violations": 0}
    assert summary["token"]["sid"] == payload["sid"]
    assert summary["now"].endswith("Z")


def test_token_options(make_seller: MakeSeller) -> None:
    service = make_seller(token_type="service", token_categories=["Content", "prices and discounts", "read-only"])
    payload = _jwt_payload(service.credentials["token"])
    assert payload["acc"] == 4
    assert str(payload["for"]).startswith("asid:")
    assert payload["s"] == (1 << 1) | (1 << 3) | (1 << 30)
    base = make_seller(token_type="base", token_expires_in_days=30)
    payload = _jwt_payload(base.credentials["token"])
    assert payload["acc"] == 1
    assert "for" not in payload
    assert payload["exp"] - payload["iat"] == 30 * 86400
    test = make_seller(token_type="test")
    assert _jwt_payload(test.credentials["token"])["t"] is True


def test_create_ozon_seller(make_seller: MakeSeller) -> None:
    seller = make_seller("ozon", products=10, warehouses=2)
    assert seller.credentials["client_id"].isdigit()
    assert seller.credentials["api_key"]
    kinds = [w["kind"] for w in seller.summary()["warehouses"]]
    assert kinds.count("fbs") == 2
    assert kinds.count("fbo") >= 3


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b'{"marketplace": "amazon"}', 422),
        (b'{"marketplace": "wildberries", "products": 0}', 422),
        (b'{"marketplace": "wildberries", "products": 100001}', 422),
        (b'{"marketplace": "wildberries", "products": "ten"}', 422),
        (b'{"marketplace": "wildberries", "surprise": 1}', 422),
        (b'{"marketplace": "wildberries", "token_categories": ["Teleportation"]}', 422),
        (b'{"marketplace": "ozon", "token_categories": ["content"]}', 422),
        (b"[]", 422),
    ],
)
def test_bad_create_bodies_are_problems(http: httpx.Client, body: bytes, status: int) -> None:
    response = http.post("/control/sellers", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


def test_unknown_seller_is_404_everywhere(http: httpx.Client) -> None:
    for method, path, body in [
        ("GET", "/control/sellers/nope", None),
        ("GET", "/control/sellers/nope/stocks", None),
        ("PUT", "/control/sellers/nope/stocks", {"items": []}),
        ("POST", "/control/sellers/nope/advance", {"hours": 1}),
        ("PUT", "/control/sellers/nope/faults", {}),
        ("DELETE", "/control/sellers/nope", None),
    ]:
        response = http.request(method, path, json=body)
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_delete_revokes_credentials(make_seller: MakeSeller, http: httpx.Client) -> None:
    seller = make_seller()
    assert http.delete(f"/control/sellers/{seller.id}").status_code == 204
    assert http.get(f"/control/sellers/{seller.id}").status_code == 404
    assert seller.wb("GET", "/ping").status_code == 401


def test_same_seed_same_catalogue(make_seller: MakeSeller) -> None:
    a = make_seller(products=40, seed=77)
    b = make_seller(products=40, seed=77)
    c = make_seller(products=40, seed=78)
    assert a.truth() == b.truth()
    assert a.truth() != c.truth()


def test_put_stocks_sets_and_creates_rows(make_seller: MakeSeller) -> None:
    seller = make_seller(products=20, warehouses=2)
    truth = seller.truth()
    row = truth[0]
    fbs_ids = [w["id"] for w in seller.summary()["warehouses"] if w["kind"] == "fbs"]
    have = {(r["variant_id"], r["warehouse_id"]) for r in truth}
    missing = next(
        (r["product_id"], r["variant_id"], w) for r in truth for w in fbs_ids if (r["variant_id"], w) not in have
    )
    items = [
        {**row, "quantity": 777},
        {"product_id": missing[0], "variant_id": missing[1], "warehouse_id": missing[2], "quantity": 5},
    ]
    response = seller.http.put(f"/control/sellers/{seller.id}/stocks", json={"items": items})
    assert response.status_code == 200, response.text
    assert response.json() == {"count": 2, "created": 1}
    after = {(r["variant_id"], r["warehouse_id"]): r["quantity"] for r in seller.truth()}
    assert after[(row["variant_id"], row["warehouse_id"])] == 777
    assert after[(missing[1], missing[2])] == 5


def test_put_stocks_is_all_or_nothing(make_seller: MakeSeller) -> None:
    seller = make_seller(products=10)
    before = seller.truth()
    row = before[0]
    items = [{**row, "quantity": 999}, {**row, "variant_id": "1", "quantity": 1}]
    response = seller.http.put(f"/control/sellers/{seller.id}/stocks", json={"items": items})
    assert response.status_code == 422
    assert seller.truth() == before
    bad_types = seller.http.put(f"/control/sellers/{seller.id}/stocks", json={"items": [{**row, "quantity": -1}]})
    assert bad_types.status_code == 422


def test_faults_and_advance_validation(make_seller: MakeSeller) -> None:
    seller = make_seller()
    base = f"/control/sellers/{seller.id}"
    assert seller.http.put(f"{base}/faults", json={"error_rate": 1.5}).status_code == 422
    assert seller.http.put(f"{base}/faults", json={"status": 200}).status_code == 422
    assert seller.http.put(f"{base}/faults", json={"rate_limits": "maybe"}).status_code == 422
    assert seller.http.post(f"{base}/advance", json={"hours": 0}).status_code == 422
    assert seller.http.post(f"{base}/advance", json={}).status_code == 422
    ok = seller.http.put(f"{base}/faults", json={"error_rate": 0.5, "status": 503, "latency_ms": 1})
    assert ok.json() == {
        "error_rate": 0.5, "status": 503, "latency_ms": 1, "latency_jitter_ms": 0, "rate_limits": "real",
        "malformed_rate": 0.0, "endpoint": "", "retry_after": 1, "count": 0, "after": 0,
    }  # fmt: skip
    assert seller.http.put(f"{base}/faults", json={"retry_after": -1}).status_code == 422
    assert seller.http.put(f"{base}/faults", json={"count": -1}).status_code == 422
    assert seller.http.put(f"{base}/faults", json={"latency_jitter_ms": -1}).status_code == 422


def test_advance_moves_the_clock(make_seller: MakeSeller) -> None:
    seller = make_seller(products=200)
    before = seller.summary()
    result = seller.advance(48)
    after = seller.summary()
    assert result["orders"] > 0
    assert after["orders"] == before["orders"] + result["orders"]
    assert after["now"] > before["now"]
    assert result["now"] == after["now"]
