"""Who is out is out now (issue 14 §2): removal, a role change and logout take effect on the very next
request — not when the 15-minute access token expires — in every API process; the API keys a removed member
created stop working with them."""

from __future__ import annotations

import msgspec
from litestar.testing import AsyncTestClient

from app.server.app import create_app
from tests.conftest import make_settings
from tests.helpers import PASSWORD, add_member, invite, register


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_removed_member_is_refused_on_the_next_request(client):
    owner = await register(client)
    member = await add_member(client, owner)
    assert (await client.get("/api/v1/me", headers=member["member_headers"])).status_code == 200
    assert (await client.delete(f"/api/v1/members/{member['user']['id']}", headers=owner["headers"])).status_code == 204
    resp = await client.get("/api/v1/me", headers=member["member_headers"])
    assert resp.status_code == 401 and resp.json()["code"] == "token_revoked"
    # Every route, not only /me (the check is in the request gate), and the cached list too.
    for path in ("/api/v1/products", "/api/v1/stock/summary", "/api/v1/members"):
        assert (await client.get(path, headers=member["member_headers"])).status_code == 401, path
    # Their refresh token is dead too, and their own organization is untouched.
    refresh = member["member_tokens"]["refresh_token"]
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})).status_code == 401
    assert (await client.get("/api/v1/me", headers=member["headers"])).status_code == 200


async def test_a_role_change_applies_on_the_next_request(client):
    owner = await register(client)
    admin = await add_member(client, owner, "admin")
    created = await client.post("/api/v1/api-keys", json={"name": "by admin"}, headers=admin["member_headers"])
    assert created.status_code == 201
    demoted = await client.patch(
        f"/api/v1/members/{admin['user']['id']}", json={"role": "member"}, headers=owner["headers"]
    )
    assert demoted.status_code == 200
    # The admin-role token is refused at once ...
    stale = await client.post("/api/v1/api-keys", json={"name": "again"}, headers=admin["member_headers"])
    assert stale.status_code == 401 and stale.json()["code"] == "token_revoked"
    # ... and a refresh gives a token of the new role.
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": admin["member_tokens"]["refresh_token"]}
    )
    assert refreshed.status_code == 200
    fresh = bearer(refreshed.json()["access_token"])
    assert (await client.get("/api/v1/me", headers=fresh)).json()["role"] == "member"
    assert (await client.post("/api/v1/api-keys", json={"name": "no"}, headers=fresh)).status_code == 403
    # Setting the same role again revokes nothing.
    same = await client.patch(
        f"/api/v1/members/{admin['user']['id']}", json={"role": "member"}, headers=owner["headers"]
    )
    assert same.status_code == 200
    assert (await client.get("/api/v1/me", headers=fresh)).status_code == 200


async def test_logout_ends_the_sessions_access_tokens_only(client, account):
    other_session = await client.post(
        "/api/v1/auth/login", json={"email": account["email"], "password": account["password"]}
    )
    assert (await client.get("/api/v1/me", headers=account["headers"])).status_code == 200
    out = await client.post("/api/v1/auth/logout", json={"refresh_token": account["tokens"]["refresh_token"]})
    assert out.status_code == 204
    resp = await client.get("/api/v1/me", headers=account["headers"])
    assert resp.status_code == 401 and resp.json()["code"] == "token_revoked"
    # Another login session of the same person goes on.
    assert (await client.get("/api/v1/me", headers=bearer(other_session.json()["access_token"]))).status_code == 200


async def test_a_replayed_refresh_token_ends_the_sessions_access_tokens(client, account):
    first = account["tokens"]["refresh_token"]
    second = (await client.post("/api/v1/auth/refresh", json={"refresh_token": first})).json()
    assert (await client.get("/api/v1/me", headers=bearer(second["access_token"]))).status_code == 200
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": first})).status_code == 401
    assert (await client.get("/api/v1/me", headers=bearer(second["access_token"]))).status_code == 401


async def test_revocations_reach_every_api_process_at_once(settings, client, redis):
    """Two API processes (two apps, each with its own token and key caches) on one Redis."""
    owner = await register(client)
    member = await add_member(client, owner, "admin")
    key = await client.post(
        "/api/v1/api-keys", json={"name": "member's", "scopes": ["read", "write"]}, headers=member["member_headers"]
    )
    own_key = await client.post("/api/v1/api-keys", json={"name": "owner's"}, headers=owner["headers"])
    async with AsyncTestClient(app=create_app(settings)) as elsewhere:
        # Warm the other process's caches: the key lookup and the decoded token.
        assert (await elsewhere.get("/api/v1/products", headers=bearer(key.json()["key"]))).status_code == 200
        assert (await elsewhere.get("/api/v1/me", headers=member["member_headers"])).status_code == 200
        assert (await elsewhere.get("/api/v1/products", headers=bearer(own_key.json()["key"]))).status_code == 200
        await client.delete(f"/api/v1/members/{member['user']['id']}", headers=owner["headers"])
        gone = await elsewhere.get("/api/v1/products", headers=bearer(key.json()["key"]))
        assert gone.status_code == 401 and gone.json()["code"] == "token_revoked"
        assert (await elsewhere.get("/api/v1/me", headers=member["member_headers"])).status_code == 401
        # The member's key is listed as revoked; the owner's own key is untouched.
        listed = await client.get("/api/v1/api-keys", params={"include_revoked": "true"}, headers=owner["headers"])
        revoked = {k["name"]: k["revoked_at"] for k in listed.json()["items"]}
        assert revoked["member's"] is not None and revoked["owner's"] is None
        assert (await elsewhere.get("/api/v1/products", headers=bearer(own_key.json()["key"]))).status_code == 200
        # DELETE /api-keys/{id} is immediate everywhere as well (no 5 s cache lifetime).
        await client.delete(f"/api/v1/api-keys/{own_key.json()['id']}", headers=owner["headers"])
        assert (await elsewhere.get("/api/v1/products", headers=bearer(own_key.json()["key"]))).status_code == 401


async def test_someone_removed_and_invited_again_gets_in_with_new_tokens(client):
    owner = await register(client)
    member = await add_member(client, owner)
    await client.delete(f"/api/v1/members/{member['user']['id']}", headers=owner["headers"])
    again = await invite(client, owner, member["email"])
    accepted = await client.post(
        "/api/v1/invitations/accept", json={"token": again["token"]}, headers=member["headers"]
    )
    assert accepted.status_code == 200, accepted.text
    assert (
        await client.get("/api/v1/me", headers=bearer(accepted.json()["tokens"]["access_token"]))
    ).status_code == 200
    assert (
        await client.get("/api/v1/me", headers=member["member_headers"])
    ).status_code == 401  # the old ones stay out


async def test_with_redis_down_the_database_decides(client, database, settings):
    owner = await register(client)
    member = await add_member(client, owner)
    await client.delete(f"/api/v1/members/{member['user']['id']}", headers=owner["headers"])
    down = make_settings(database, "redis://127.0.0.1:1/0", rate_limit_fail_open=True)
    async with AsyncTestClient(app=create_app(down)) as c:
        # /products (not /me, which looks the membership up itself): only the gate can refuse it.
        assert (await c.get("/api/v1/products", headers=owner["headers"])).status_code == 200
        resp = await c.get("/api/v1/products", headers=member["member_headers"])
        assert resp.status_code == 401 and resp.json()["code"] == "token_revoked"


async def test_with_rate_limiting_off_revocations_still_apply(client, settings):
    owner = await register(client)
    member = await add_member(client, owner)
    off = msgspec.structs.replace(settings, rate_limit_enabled=False)
    async with AsyncTestClient(app=create_app(off)) as c:
        assert (await c.get("/api/v1/products", headers=member["member_headers"])).status_code == 200
        await client.delete(f"/api/v1/members/{member['user']['id']}", headers=owner["headers"])
        assert (await c.get("/api/v1/products", headers=member["member_headers"])).status_code == 401


async def test_login_tokens_carry_the_version_and_session(client, account):
    import jwt

    login = await client.post("/api/v1/auth/login", json={"email": account["email"], "password": PASSWORD})
    claims = jwt.decode(login.json()["access_token"], options={"verify_signature": False})
    assert isinstance(claims["ver"], int) and claims["ver"] > 0
    assert len(claims["sid"]) == 32  # the login session (refresh-token family), hex
