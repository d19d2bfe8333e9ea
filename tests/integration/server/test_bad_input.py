"""Bad input gets a 4xx problem on every route, authenticated or not, never a 500 (issue 14 §4): invalid
UTF-8, JSON nested past 32 levels, numbers out of range, duplicate keys, a wrong Content-Type, an empty body.

Every operation that takes a body is taken from the app's own OpenAPI document, so a new route is covered
without anyone listing it here."""

from __future__ import annotations

import re
import uuid

import pytest

PROBLEM = "application/problem+json"
JSON = {"content-type": "application/json"}

BAD_BODIES = {
    "invalid-utf8": (b'{"email": "\xff\xfe@example.com", "password": "abcdefghij"}', 400, "invalid_utf8"),
    "overlong-utf8": (b'{"name": "\xc0\xaf"}', 400, "invalid_utf8"),
    "deep-33": (b'{"a": ' + b"[" * 33 + b"]" * 33 + b"}", 400, "json_too_deep"),
    "deep-100k": (b"[" * 100_000 + b"]" * 100_000, 400, "json_too_deep"),
    "unbalanced-deep": (b"[" * 5000, 400, "json_too_deep"),
    "duplicate-key": (b'{"name": "a", "name": "b"}', 400, "duplicate_key"),
    "nested-duplicate": (b'{"x": {"k": 1, "k": 2}}', 400, "duplicate_key"),
    "int-past-64-bits": (b'{"limit": 9223372036854775808}', 422, "number_out_of_range"),
    "huge-int": (b'{"limit": ' + b"9" * 5000 + b"}", 422, "number_out_of_range"),
    "float-overflow": (b'{"threshold": 1e999}', 422, "number_out_of_range"),
    "nan": (b'{"threshold": NaN}', 400, "malformed_json"),
    "truncated": (b'{"name": ', 400, "malformed_json"),
    "bom": (b'\xef\xbb\xbf{"name": "a"}', 400, "malformed_json"),
}


def _body_operations(app, media: str = "application/json") -> list[tuple[str, str]]:
    """The operations whose request body is ``media`` (JSON unless a file upload is asked for)."""
    doc = app.openapi_schema.to_schema()
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("post", "put", "patch") and media in op.get("requestBody", {}).get("content", {}):
                out.append((method.upper(), re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)))
    return out


def assert_problem(resp, status: int, code: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    assert resp.headers["content-type"].startswith(PROBLEM)
    assert resp.json()["code"] == code


@pytest.mark.parametrize("case", list(BAD_BODIES))
async def test_bad_json_bodies_on_every_route(app, client, account, case):
    body, status, code = BAD_BODIES[case]
    operations = _body_operations(app)
    assert len(operations) >= 15
    for method, path in [*operations, ("POST", "/telegram/webhook")]:
        for headers in ({}, account["headers"]):
            resp = await client.request(method, path, content=body, headers={**JSON, **headers})
            assert_problem(resp, status, code)


async def test_wrong_content_type_and_empty_body_on_every_route(app, client, account):
    for method, path in _body_operations(app):
        for headers in ({}, account["headers"]):
            for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
                resp = await client.request(
                    method, path, content=b'{"a": 1}', headers={"content-type": ctype, **headers}
                )
                assert_problem(resp, 415, "unsupported_media_type")
            resp = await client.request(method, path, content=b"", headers={**JSON, **headers})
            assert resp.status_code in (400, 401, 404, 422), (method, path, resp.status_code, resp.text[:200])
            assert resp.headers["content-type"].startswith(PROBLEM)


async def test_an_upload_route_takes_multipart_only(app, client, account):
    uploads = _body_operations(app, "multipart/form-data")
    assert ("POST", "/api/v1/reconciliations") in uploads
    for method, path in uploads:
        for headers in ({}, account["headers"]):
            for ctype in ("text/plain", "application/json", "application/x-www-form-urlencoded"):
                resp = await client.request(
                    method, path, content=b'{"a": 1}', headers={"content-type": ctype, **headers}
                )
                assert_problem(resp, 415, "unsupported_media_type")
            # A multipart body is let through to the handler, which answers for its parts (never a 415 or a 500).
            resp = await client.request(
                method,
                path,
                content=b"--x--\r\n",
                headers={"content-type": "multipart/form-data; boundary=x", **headers},
            )
            assert resp.status_code in (400, 401, 422), (method, path, resp.status_code, resp.text[:200])
            assert resp.headers["content-type"].startswith(PROBLEM)


async def test_good_json_still_passes(client, account):
    resp = await client.post(
        "/api/v1/api-keys",
        content=b'{"name": "ci \\u00e9t\\u00e9 \xe2\x9c\x93", "scopes": ["read"]}',
        headers={**JSON, **account["headers"]},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == "ci été ✓"


async def test_text_postgresql_cannot_store_is_a_422_not_a_500(client):
    """A NUL character is valid JSON but cannot be stored in a text column: a 422 problem, nothing stored."""
    email = f"nul-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": "correct horse battery", "organization_name": "Acme\u0000 Ltd"}
    resp = await client.post("/api/v1/auth/register", json=body)
    assert_problem(resp, 422, "unstorable_text")
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": "correct horse battery"})
    assert login.status_code == 401, login.text  # no half-made account
