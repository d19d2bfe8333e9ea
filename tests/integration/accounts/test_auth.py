"""Sign-up, login, token rotation with reuse detection, logout, and /me — through the real app."""

from __future__ import annotations

import jwt

from tests.conftest import unique_email


async def test_register_returns_user_tenant_and_tokens(client, account):
    assert account["role"] == "owner"
    assert account["user"]["email"] == account["email"]
    assert account["tenant"]["name"] == "Acme"
    assert account["tenant"]["plan"] == "self_hosted"
    tokens = account["tokens"]
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert {"iss", "aud", "exp", "iat", "jti", "sub", "tid"} <= set(claims)
    assert claims["tid"] == account["tenant"]["id"]
    me = await client.get("/api/v1/me", headers=account["headers"])
    assert me.status_code == 200
    assert me.json()["user"]["id"] == account["user"]["id"]
    assert me.json()["role"] == "owner"


async def test_duplicate_email_is_409_case_insensitively(client, account):
    resp = await client.post(
        "/api/v1/auth/register",
        json={"email": account["email"].upper(), "password": "another password", "organization_name": "B"},
    )
    assert resp.status_code == 409
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["code"] == "email_taken"


async def test_login_wrong_password_and_unknown_email_look_the_same(client, account):
    wrong = await client.post("/api/v1/auth/login", json={"email": account["email"], "password": "nope-nope-nope"})
    unknown = await client.post("/api/v1/auth/login", json={"email": unique_email(), "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    assert wrong.json()["code"] == unknown.json()["code"] == "unauthorized"


async def test_login_then_refresh_rotates(client, account):
    login = await client.post("/api/v1/auth/login", json={"email": account["email"], "password": account["password"]})
    assert login.status_code == 200
    pair = login.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    refreshed = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["refresh_token"] != pair["refresh_token"]
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert me.status_code == 200


async def test_reusing_a_rotated_refresh_token_revokes_the_family(client, account):
    first = account["tokens"]["refresh_token"]
    second = (await client.post("/api/v1/auth/refresh", json={"refresh_token": first})).json()["refresh_token"]
    # The stolen first token comes back: refused, and the legitimate second one dies with it.
    reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert reuse.status_code == 401
    after = await client.post("/api/v1/auth/refresh", json={"refresh_token": second})
    assert after.status_code == 401
    # Another login (a new family) is unaffected.
    login = await client.post("/api/v1/auth/login", json={"email": account["email"], "password": account["password"]})
    assert login.status_code == 200


async def test_logout_revokes(client, account):
    token = account["tokens"]["refresh_token"]
    out = await client.post("/api/v1/auth/logout", json={"refresh_token": token})
    assert out.status_code == 204
    again = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
    assert again.status_code == 401
    # Logging out twice, or with garbage, is harmless.
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": token})).status_code == 204
    assert (await client.post("/api/v1/auth/logout", json={"refresh_token": "garbage"})).status_code == 204


async def test_tampered_or_foreign_tokens_are_401(client, account):
    forged = jwt.encode({"sub": account["user"]["id"], "tid": account["tenant"]["id"], "role": "owner"}, "wrong" * 10)
    for header in (f"Bearer {forged}", "Bearer", "Basic abc", ""):
        resp = await client.get("/api/v1/me", headers={"Authorization": header} if header else {})
        assert resp.status_code == 401
        assert resp.json()["code"] == "unauthorized"
    bad_refresh = account["tokens"]["refresh_token"][:-4] + "AAAA"
    assert (await client.post("/api/v1/auth/refresh", json={"refresh_token": bad_refresh})).status_code == 401
