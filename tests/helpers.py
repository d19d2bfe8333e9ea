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


async def invite(client: Any, owner: dict[str, Any], email: str, role: str = "member") -> dict[str, Any]:
    """``owner`` invites ``email``; the invitation (with its one-time ``token``)."""
    resp = await client.post("/api/v1/invitations", json={"email": email, "role": role}, headers=owner["headers"])
    assert resp.status_code == 201, resp.text
    return resp.json()


async def add_member(client: Any, owner: dict[str, Any], role: str = "member") -> dict[str, Any]:
    """Register a second person, invite them to ``owner``'s organization and accept; returns their headers there
    (``member_headers``) beside those of their own organization (``headers``)."""
    other = await register(client, "Other")
    invitation = await invite(client, owner, other["email"], role)
    resp = await client.post(
        "/api/v1/invitations/accept", json={"token": invitation["token"]}, headers=other["headers"]
    )
    assert resp.status_code == 200, resp.text
    other["member_tokens"] = resp.json()["tokens"]
    other["member_headers"] = {"Authorization": f"Bearer {other['member_tokens']['access_token']}"}
    return other


def explained_plan(value: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``EXPLAIN (ANALYZE, FORMAT JSON)``'s one row value (decoded already by SQLAlchemy's json codec, or text) as
    (the document, every plan node in it, init plans and CTEs included)."""
    import json

    [document] = json.loads(value) if isinstance(value, str) else value

    def nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node, *(n for child in node.get("Plans", []) for n in nodes(child))]

    return document, nodes(document["Plan"])


def join_filter_comparisons(nodes: list[dict[str, Any]]) -> int:
    """Rows the plan's joins compared and threw away (``Rows Removed by Join Filter``, summed): near zero for
    hash joins, every row against every row for a nested loop over a materialised set."""
    return int(sum(n.get("Rows Removed by Join Filter", 0) for n in nodes))
