"""Members: list, add, change role, remove; member is read-only; owners are protected."""

from __future__ import annotations

from tests.helpers import add_member, register


async def test_owner_lists_adds_changes_and_removes_members(client):
    owner = await register(client)
    other = await add_member(client, owner, "member")
    page = (await client.get("/api/v1/members", headers=owner["headers"])).json()
    assert {m["email"]: m["role"] for m in page["items"]} == {
        owner["email"]: "owner",
        other["email"]: "member",
    }
    assert page["next_cursor"] is None
    uid = other["user"]["id"]
    changed = await client.patch(f"/api/v1/members/{uid}", json={"role": "admin"}, headers=owner["headers"])
    assert changed.status_code == 200 and changed.json()["role"] == "admin"
    removed = await client.delete(f"/api/v1/members/{uid}", headers=owner["headers"])
    assert removed.status_code == 204
    page = (await client.get("/api/v1/members", headers=owner["headers"])).json()
    assert [m["email"] for m in page["items"]] == [owner["email"]]


async def test_member_is_read_only(client):
    owner = await register(client)
    member = await add_member(client, owner, "member")
    assert (await client.get("/api/v1/members", headers=member["member_headers"])).status_code == 200
    me = (await client.get("/api/v1/me", headers=member["member_headers"])).json()
    assert me["role"] == "member" and me["tenant"]["id"] == owner["tenant"]["id"]
    resp = await client.patch(
        f"/api/v1/members/{owner['user']['id']}", json={"role": "member"}, headers=member["member_headers"]
    )
    assert resp.status_code == 403 and resp.json()["code"] == "forbidden"


async def test_admin_cannot_grant_owner_and_last_owner_stays(client):
    owner = await register(client)
    admin = await add_member(client, owner, "admin")
    member = await add_member(client, owner, "member")
    grant = await client.patch(
        f"/api/v1/members/{member['user']['id']}", json={"role": "owner"}, headers=admin["member_headers"]
    )
    assert grant.status_code == 403
    demote = await client.patch(
        f"/api/v1/members/{owner['user']['id']}", json={"role": "admin"}, headers=owner["headers"]
    )
    assert demote.status_code == 409
    assert (await client.delete(f"/api/v1/members/{owner['user']['id']}", headers=owner["headers"])).status_code == 409


async def test_member_pagination(client):
    owner = await register(client)
    for _ in range(3):
        await add_member(client, owner)
    seen = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/members", params=params, headers=owner["headers"])).json()
        seen += [m["user_id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 4
    bad = await client.get("/api/v1/members", params={"cursor": "%%%not-a-cursor"}, headers=owner["headers"])
    assert bad.status_code == 422


async def test_removed_member_loses_refresh(client):
    owner = await register(client)
    member = await add_member(client, owner)
    login = await client.post(
        "/api/v1/auth/login",
        json={
            "email": member["email"],
            "password": "correct horse battery",
            "tenant_id": owner["tenant"]["id"],
        },
    )
    refresh = login.json()["refresh_token"]
    await client.delete(f"/api/v1/members/{member['user']['id']}", headers=owner["headers"])
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})).status_code == 401
