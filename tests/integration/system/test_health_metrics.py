"""Health, readiness (503 when Redis is unreachable), Prometheus metrics, and the OpenAPI contract."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from app.server.app import create_app
from tests.conftest import METRICS_HEADERS, make_settings


async def test_live_and_ready(client):
    assert (await client.get("/health/live")).json() == {"status": "ok", "checks": {}}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}


async def test_ready_is_503_when_redis_is_unreachable(database):
    settings = make_settings(database, "redis://127.0.0.1:1/0", health_timeout_seconds=0.5)
    async with AsyncTestClient(app=create_app(settings)) as c:
        resp = await c.get("/health/ready")
        assert resp.status_code == 503
        assert resp.headers["content-type"].startswith("application/problem+json")
        body = resp.json()
        assert body["code"] == "service_unavailable" and "redis" in body["detail"]
        assert (await c.get("/health/live")).status_code == 200


async def test_ready_is_503_when_database_is_unreachable(database, redis_url):
    bad = dict(database, app="postgresql://stock_tracker_app@127.0.0.1:1/nothing")
    settings = make_settings(bad, redis_url, health_timeout_seconds=0.5)
    async with AsyncTestClient(app=create_app(settings)) as c:
        resp = await c.get("/health/ready")
        assert resp.status_code == 503 and "database" in resp.json()["detail"]


async def test_metrics_has_http_duration_by_route_template(client, account):
    await client.get("/api/v1/me", headers=account["headers"])
    await client.get(f"/api/v1/members/{account['user']['id']}", headers=account["headers"])
    text = (await client.get("/metrics", headers=METRICS_HEADERS)).text
    assert "http_server_request_duration_seconds_bucket" in text
    assert 'http_route="/api/v1/me"' in text
    assert 'http_request_method="GET"' in text and 'http_response_status_code="200"' in text
    assert account["tenant"]["id"] not in text  # no tenant ids as labels


async def test_openapi_contract(client):
    doc = (await client.get("/schema/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    op_ids = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            assert op.get("operationId"), (method, path)
            assert op.get("tags"), (method, path)
            op_ids.append(op["operationId"])
            errors = [c for c in op["responses"] if c.startswith(("4", "5"))]
            assert errors, f"{method} {path} declares no error responses"
            for code in errors:
                assert "application/problem+json" in op["responses"][code]["content"], (method, path, code)
    assert len(op_ids) == len(set(op_ids))
    docs = await client.get("/schema")
    assert docs.status_code == 200
