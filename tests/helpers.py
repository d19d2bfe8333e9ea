"""Small helpers shared by the integration tests."""

from __future__ import annotations

from typing import Any

from tests.conftest import unique_email

PASSWORD = "correct horse battery"


async def register(client: Any, org: str = "Acme") -> dict[str, Any]:
    email = unique_email("owner")
    resp = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "organization_name": org}
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    body["email"] = email
    body["headers"] = {"Authorization": f"Bearer {body['tokens']['access_token']}"}
    return body


async def login(client: Any, email: str, tenant_id: str | None = None) -> dict[str, str]:
    payload: dict[str, Any] = {"email": email, "password": PASSWORD}
    if tenant_id:
        payload["tenant_id"] = tenant_id
    resp = await client.post("/api/v1/auth/login", json=payload)
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


async def add_member(client: Any, owner: dict[str, Any], role: str = "member") -> dict[str, Any]:
    """Register a second person and add them to ``owner``'s organization; returns their headers there."""
    other = await register(client, "Other")
    resp = await client.post("/api/v1/members", json={"email": other["email"], "role": role}, headers=owner["headers"])
    assert resp.status_code == 201, resp.text
    other["member_headers"] = await login(client, other["email"], owner["tenant"]["id"])
    return other
