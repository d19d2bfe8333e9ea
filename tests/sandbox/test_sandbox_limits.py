"""Rate limits (token buckets, 429 headers, violation counting) and injected faults."""

from __future__ import annotations

import json
import random

from tests.sandbox._support import MakeSeller

FBW = "/api/analytics/v1/stocks-report/wb-warehouses"
CARDS = "/content/v2/get/cards/list"


def test_wb_429_headers_body_and_violations(make_seller: MakeSeller) -> None:
    seller = make_seller(products=5, rate_limits="real")
    first = seller.wb("POST", FBW, json={})
    assert first.status_code == 200
    assert first.headers["X-Ratelimit-Remaining"] == "0"
    second = seller.wb("POST", FBW, json={})
    assert second.status_code == 429
    assert second.headers["content-type"].startswith("application/problem+json")
    body = second.json()
    assert body["title"] == "too many requests"
    assert body["status"] == 429
    assert body["statusText"] == "Too Many Requests"
    assert body["origin"].startswith("s2s-api-auth-")
    # 3 requests per minute, burst 1: the next token is 20 s away; the bucket is full again after 20 s
    assert 19 <= int(second.headers["X-Ratelimit-Retry"]) <= 20
    assert 19 <= int(second.headers["X-Ratelimit-Reset"]) <= 20
    assert second.headers["X-Ratelimit-Limit"] == "1"
    assert "X-Ratelimit-Remaining" not in second.headers

    stats = seller.summary()["stats"]
    key = f"POST /wb{FBW}"
    assert stats["requests"][key] == 2
    assert stats["rate_limited"] == {key: 1}
    assert stats["violations"] == 1


def test_a_client_within_the_burst_has_no_violations(make_seller: MakeSeller) -> None:
    seller = make_seller(products=5, rate_limits="real")
    remaining = [int(seller.wb("POST", CARDS, json={}).headers["X-Ratelimit-Remaining"]) for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    assert seller.summary()["stats"]["violations"] == 0
    assert seller.wb("POST", CARDS, json={}).status_code == 429
    assert seller.summary()["stats"]["violations"] == 1


def test_marketplace_4xx_costs_ten_requests(make_seller: MakeSeller) -> None:
    seller = make_seller(products=5, rate_limits="real")
    warehouses = seller.wb("GET", "/api/v3/warehouses")
    assert warehouses.headers["X-Ratelimit-Remaining"] == "19"
    bad = seller.wb("POST", "/api/v3/stocks/1", json={"chrtIds": [1]})
    assert bad.status_code == 404
    assert bad.headers["X-Ratelimit-Remaining"] == "10"  # a bucket of 20 (stocks group) charged 10
    good = seller.wb("POST", f"/api/v3/stocks/{warehouses.json()[0]['id']}", json={"chrtIds": [1]})
    assert good.status_code == 200
    assert good.headers["X-Ratelimit-Remaining"] == "9"
    # the warehouses group is its own bucket and was not charged
    assert seller.wb("GET", "/api/v3/warehouses").headers["X-Ratelimit-Remaining"] == "18"


def test_limits_are_per_seller_and_can_be_switched_off(make_seller: MakeSeller) -> None:
    a = make_seller(products=5, rate_limits="real")
    b = make_seller(products=5, rate_limits="real")
    assert a.wb("POST", FBW, json={}).status_code == 200
    assert b.wb("POST", FBW, json={}).status_code == 200
    assert a.wb("POST", FBW, json={}).status_code == 429
    a.set_faults(rate_limits="off")
    assert [a.wb("POST", FBW, json={}).status_code for _ in range(5)] == [200] * 5
    assert "X-Ratelimit-Remaining" not in a.wb("POST", FBW, json={}).headers


def test_ozon_per_second_limit(make_seller: MakeSeller) -> None:
    seller = make_seller("ozon", products=5, rate_limits="real")
    responses = [seller.ozon("/v2/warehouse/list", {"limit": 10}) for _ in range(150)]
    limited = [r for r in responses if r.status_code == 429]
    assert limited, "150 back-to-back requests exceed 50 per second"
    assert limited[0].json() == {
        "code": 8, "message": "You have reached request rate limit per second", "details": [],
    }  # fmt: skip
    assert {r.status_code for r in responses} == {200, 429}
    assert seller.summary()["stats"]["violations"] == len(limited)


def test_error_faults_use_each_hosts_error_shape(make_seller: MakeSeller) -> None:
    wb = make_seller(products=5)
    wb.set_faults(error_rate=1.0, status=500, rate_limits="off")
    failed = wb.wb("POST", CARDS, json={})
    assert failed.status_code == 500
    assert failed.json()["status"] == 500
    wb.set_faults(error_rate=1.0, status=400, rate_limits="off")
    assert wb.wb("POST", CARDS, json={}).json()["error"] is True
    assert wb.wb("GET", "/api/v3/warehouses").json()["code"] == "IncorrectRequest"
    assert "errors" in wb.wb("GET", "/api/v1/supplier/orders", params={"dateFrom": "2024-01-01"}).json()
    wb.set_faults(error_rate=1.0, status=429, rate_limits="off")
    throttled = wb.wb("GET", "/api/v3/warehouses")
    assert throttled.status_code == 429
    assert "X-Ratelimit-Retry" in throttled.headers
    stats = wb.summary()["stats"]
    assert stats["violations"] == 0, "injected failures are not the client's violations"
    assert sum(stats["faults"].values()) == 5

    ozon = make_seller("ozon", products=5)
    ozon.set_faults(error_rate=1.0, status=503, rate_limits="off")
    response = ozon.ozon("/v2/warehouse/list", {"limit": 1})
    assert response.status_code == 503
    assert set(response.json()) == {"code", "message", "details"}


def test_faults_are_partial_and_deterministic(make_seller: MakeSeller) -> None:
    seller = make_seller(products=5)

    def run() -> list[int]:
        seller.set_faults(error_rate=0.3, status=502, rate_limits="off")
        return [seller.wb("GET", "/api/v3/warehouses").status_code for _ in range(40)]

    first = run()
    assert set(first) == {200, 502}
    assert run() == first


def test_latency_and_malformed_pages(make_seller: MakeSeller) -> None:
    seller = make_seller(products=5)
    seller.set_faults(latency_ms=150, rate_limits="off")
    response = seller.wb("GET", "/api/v3/warehouses")
    assert response.status_code == 200
    assert response.elapsed.total_seconds() >= 0.15
    seller.set_faults(malformed_rate=1.0, rate_limits="off")
    broken = seller.wb("GET", "/api/v3/warehouses")
    assert broken.status_code == 200
    try:
        json.loads(broken.content)
    except ValueError:
        pass
    else:
        raise AssertionError("a malformed page must not parse")


def test_latency_jitter_is_a_seeded_draw_per_request(make_seller: MakeSeller) -> None:
    """Each request waits latency_ms plus its own uniform draw up to latency_jitter_ms, from a sequence seeded
    by the seller (the same faults again → the same waits), apart from the sequence that picks the failures."""
    seller = make_seller(products=5, seed=7)
    rng = random.Random("latency:7")
    expected = [0.05 + rng.uniform(0, 300) / 1000 for _ in range(6)]
    assert max(expected) - min(expected) > 0.1  # the draws differ enough to be seen
    for _ in range(2):  # a faults update reseeds: the same waits again
        seller.set_faults(latency_ms=50, latency_jitter_ms=300, rate_limits="off")
        for wait in expected:
            response = seller.wb("GET", "/api/v3/warehouses")
            assert response.status_code == 200
            assert wait <= response.elapsed.total_seconds() < wait + 0.5
    assert seller.summary()["faults"]["latency_jitter_ms"] == 300


def test_a_targeted_429_storm_with_its_wait_that_passes(make_seller: MakeSeller) -> None:
    """The control API can aim 429s at one endpoint, with the wait the 429 announces, for a number of
    requests: other endpoints answer as usual, and the storm ends after ``count`` faults."""
    seller = make_seller(products=5, rate_limits="off")
    faults = {"error_rate": 1.0, "status": 429, "endpoint": "stocks-report/wb-warehouses", "retry_after": 7}
    faults |= {"rate_limits": "off"}  # a faults update sets every field
    assert seller.http.put(f"/control/sellers/{seller.id}/faults", json={**faults, "count": 2}).status_code == 200
    assert seller.wb("POST", CARDS, json={}).status_code == 200  # not aimed at
    for _ in range(2):
        refused = seller.wb("POST", FBW, json={})
        assert refused.status_code == 429
        assert refused.headers["X-Ratelimit-Retry"] == "7"
    assert seller.wb("POST", FBW, json={}).status_code == 200  # the storm has passed
    assert seller.summary()["stats"]["faults"] == {f"POST /wb{FBW}": 2}
    # `after`: the first matching requests pass, the next one is faulted (a failure on the second page)
    assert seller.http.put(f"/control/sellers/{seller.id}/faults", json={**faults, "count": 1, "after": 1}).is_success
    assert [seller.wb("POST", FBW, json={}).status_code for _ in range(3)] == [200, 429, 200]
