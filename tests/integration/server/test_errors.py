"""Every error class is a problem document with a stable code; bad input never yields a 500."""

from __future__ import annotations

import pytest
import structlog
from litestar import get
from litestar.testing import AsyncTestClient

from app.server.app import create_app
from tests.helpers import add_member, register

PROBLEM = "application/problem+json"


def assert_problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith(PROBLEM)
    body = resp.json()
    assert body["status"] == status and body["code"] == code and body["title"]
    assert body["request_id"] == resp.headers["x-request-id"]
    return body


async def test_unknown_route_404(client):
    assert_problem(await client.get("/api/v1/nothing-here"), 404, "not_found")


async def test_wrong_method_405(client):
    assert_problem(await client.put("/api/v1/auth/login", json={}), 405, "method_not_allowed")


async def test_malformed_json_400(client):
    resp = await client.post(
        "/api/v1/auth/login",
        content=b'{"email": "a@b.c", "password": ',
        headers={"content-type": "application/json"},
    )
    assert_problem(resp, 400, "malformed_json")


async def test_body_over_limit_413(client):
    big = b'{"email": "' + b"a" * (1024 * 1024 + 10) + b'"}'
    resp = await client.post("/api/v1/auth/login", content=big, headers={"content-type": "application/json"})
    assert_problem(resp, 413, "payload_too_large")


async def test_wrong_content_type_415(client):
    resp = await client.post(
        "/api/v1/auth/login",
        content=b"email=a&password=b",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert_problem(resp, 415, "unsupported_media_type")


async def test_validation_422_lists_fields(client):
    resp = await client.post("/api/v1/auth/register", json={"email": "not-an-email", "password": 5})
    body = assert_problem(resp, 422, "validation_error")
    fields = {e["field"] for e in body["errors"]}
    assert fields & {"email", "password", "organization_name"}
    unknown = await client.post("/api/v1/auth/login", json={"email": "a@b.cd", "password": "12345678", "admin": True})
    body = assert_problem(unknown, 422, "validation_error")
    assert body["errors"][0]["field"] == "admin"


async def test_401_and_403_and_409(client):
    assert_problem(await client.get("/api/v1/me"), 401, "unauthorized")
    owner = await register(client)
    member = await add_member(client, owner)
    assert_problem(
        await client.post("/api/v1/invitations", json={"email": "x@y.zz"}, headers=member["member_headers"]),
        403,
        "forbidden",
    )
    dup = await client.post(
        "/api/v1/auth/register",
        json={"email": owner["email"], "password": "12345678", "organization_name": "X"},
    )
    assert_problem(dup, 409, "email_taken")


async def test_500_hides_internals_and_is_logged_with_request_id(settings):
    @get("/health/boom", include_in_schema=False)
    async def boom() -> None:
        raise RuntimeError("secret internal detail: password=hunter2 SELECT * FROM users")

    app = create_app(settings)
    app.register(boom)
    with structlog.testing.capture_logs() as logs:
        async with AsyncTestClient(app=app) as c:
            resp = await c.get("/health/boom", headers={"X-Request-ID": "req-abcdef123"})
    body = assert_problem(resp, 500, "internal_error")
    assert body["request_id"] == "req-abcdef123"
    assert "secret" not in resp.text and "SELECT" not in resp.text and "Traceback" not in resp.text
    errors = [e for e in logs if e["event"] == "http.unhandled_error"]
    assert errors and errors[0]["request_id"] == "req-abcdef123"


@pytest.mark.parametrize("path", ["/health/live", "/api/v1/auth/login"])
async def test_security_headers_everywhere(client, path):
    resp = await client.get(path)
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    assert "x-request-id" in resp.headers


async def test_database_not_listening_is_503_database_unavailable(settings):
    """PostgreSQL down (restarting): asyncpg's connect raises the socket's ConnectionRefusedError, untranslated
    by SQLAlchemy. That is a 503 `database_unavailable` with Retry-After, never a 500 (found by the chaos suite,
    tests/chaos/test_postgres_restart.py)."""
    import msgspec
    from sqlalchemy.engine import make_url

    from tests.sandbox_server import free_port

    nowhere = make_url(settings.database_url).set(host="127.0.0.1", port=free_port(), query={})
    down = msgspec.structs.replace(settings, database_url=nowhere.render_as_string(hide_password=False))
    async with AsyncTestClient(app=create_app(down)) as c:
        body = {"email": "nobody@example.com", "password": "correct horse battery", "organization_name": "X"}
        resp = await c.post("/api/v1/auth/register", json=body)
        assert_problem(resp, 503, "database_unavailable")
        assert resp.headers["retry-after"] == "1"


async def test_database_starting_up_or_shutting_down_is_503(settings):
    """The server answers but refuses the session (57P03 starting up, 57P01 an administrator's shutdown)."""
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    errors = {
        "starting": asyncpg.CannotConnectNowError("the database system is starting up"),
        "stopping": asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    }

    @get("/health/db/{phase:str}", include_in_schema=False)
    async def refused(phase: str) -> None:
        raise DBAPIError("SELECT 1", None, errors[phase])

    app = create_app(settings)
    app.register(refused)
    async with AsyncTestClient(app=app) as c:
        for phase in errors:
            resp = await c.get(f"/health/db/{phase}")
            assert_problem(resp, 503, "database_unavailable")
            assert resp.headers["retry-after"] == "1"
