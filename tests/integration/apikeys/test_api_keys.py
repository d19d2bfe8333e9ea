"""API keys: created once, stored as a keyed hash, usable as a bearer everywhere within their scopes,
revocable, tenant-isolated, looked up through the SECURITY DEFINER function, and counted as usage."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from app.db.engine import create_engine, create_sessionmaker
from app.domain.apikeys import keys
from app.lib.errors import AuthenticationError
from app.server.app import create_app
from app.server.auth import ApiKeyResolver
from tests.conftest import _asyncpg_kwargs
from tests.helpers import add_member, register

PROBLEM = "application/problem+json"


async def create_key(client, owner, name: str = "CI", scopes: list[str] | None = None) -> dict:
    body = {"name": name} if scopes is None else {"name": name, "scopes": scopes}
    resp = await client.post("/api/v1/api-keys", json=body, headers=owner["headers"])
    assert resp.status_code == 201, resp.text
    return resp.json()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_create_shows_the_key_once_and_lists_only_its_prefix_and_last_four(client):
    owner = await register(client)
    created = await create_key(client, owner, "Warehouse sync", ["read", "write"])
    key = created["key"]
    assert key.startswith("stk_") and len(key) == keys.LENGTH and keys.well_formed(key)
    assert created["prefix"] == key[:8] and created["last_four"] == key[-4:]
    assert created["scopes"] == ["read", "write"] and created["revoked_at"] is None
    assert created["created_by"] == owner["user"]["id"]

    listing = (await client.get("/api/v1/api-keys", headers=owner["headers"])).json()
    assert [k["id"] for k in listing["items"]] == [created["id"]]
    assert "key" not in listing["items"][0] and key not in str(listing)
    one = (await client.get(f"/api/v1/api-keys/{created['id']}", headers=owner["headers"])).json()
    assert one["name"] == "Warehouse sync" and "key" not in one
    # Default scopes are the least privilege.
    assert (await create_key(client, owner, "reader"))["scopes"] == ["read"]


async def test_keys_are_random_and_stored_only_as_a_keyed_hash(client, settings, database):
    owner = await register(client)
    first, second = await create_key(client, owner), await create_key(client, owner)
    assert first["key"] != second["key"] and first["key"][4:20] != second["key"][4:20]
    conn = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    try:
        rows = await conn.fetch("SELECT * FROM api_keys WHERE tenant_id = $1", uuid.UUID(owner["tenant"]["id"]))
    finally:
        await conn.close()
    assert len(rows) == 2
    secret = keys.hash_secret(settings.api_key_secret, settings.jwt_secret)
    by_id = {str(r["id"]): r for r in rows}
    for made in (first, second):
        row = by_id[made["id"]]
        assert row["key_hash"] == hmac.new(secret, made["key"].encode(), hashlib.sha256).hexdigest()
        assert made["key"] not in str(dict(row))


async def test_a_key_works_everywhere_a_token_does_within_its_scopes(client):
    owner = await register(client)
    reader = (await create_key(client, owner, "reader", ["read"]))["key"]
    writer = (await create_key(client, owner, "writer", ["read", "write"]))["key"]
    for key in (reader, writer):
        assert (await client.get("/api/v1/products", headers=bearer(key))).status_code == 200
        assert (await client.get("/api/v1/members", headers=bearer(key))).status_code == 200
        assert (await client.get("/api/v1/stock/summary", headers=bearer(key))).status_code == 200
    bad_connection = {"marketplace": "wildberries", "name": "x", "credentials": {"nothing": "here"}}
    refused = await client.post("/api/v1/connections", json=bad_connection, headers=bearer(reader))
    assert refused.status_code == 403 and refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["code"] == "forbidden"
    # A write key gets past authorization (the body itself is then judged on its merits).
    allowed = await client.post("/api/v1/connections", json=bad_connection, headers=bearer(writer))
    assert allowed.status_code not in (401, 403), allowed.text


async def test_keys_cannot_manage_keys_and_members_cannot_either(client):
    owner = await register(client)
    writer = (await create_key(client, owner, "writer", ["read", "write"]))["key"]
    assert (await client.post("/api/v1/api-keys", json={"name": "x"}, headers=bearer(writer))).status_code == 403
    assert (await client.get("/api/v1/api-keys", headers=bearer(writer))).status_code == 403
    member = await add_member(client, owner, "member")
    resp = await client.post("/api/v1/api-keys", json={"name": "x"}, headers=member["member_headers"])
    assert resp.status_code == 403


async def test_revocation_takes_effect_at_once_here_and_is_listed(client):
    owner = await register(client)
    created = await create_key(client, owner)
    key = created["key"]
    assert (await client.get("/api/v1/products", headers=bearer(key))).status_code == 200
    resp = await client.delete(f"/api/v1/api-keys/{created['id']}", headers=owner["headers"])
    assert resp.status_code == 204
    after = await client.get("/api/v1/products", headers=bearer(key))
    assert after.status_code == 401 and after.json()["code"] == "unauthorized"
    assert "revoked" in after.json()["detail"]
    assert (await client.get("/api/v1/api-keys", headers=owner["headers"])).json()["items"] == []
    listed = (await client.get("/api/v1/api-keys?include_revoked=true", headers=owner["headers"])).json()
    assert listed["items"][0]["revoked_at"] is not None
    # Revoking twice is harmless.
    assert (await client.delete(f"/api/v1/api-keys/{created['id']}", headers=owner["headers"])).status_code == 204


async def test_revocation_reaches_another_api_process_within_seconds(client, settings):
    owner = await register(client)
    created = await create_key(client, owner)
    other_process = create_app(settings)
    async with AsyncTestClient(app=other_process) as other:
        assert (await other.get("/api/v1/products", headers=bearer(created["key"]))).status_code == 200
        other_process.state.api_key_resolver.ttl = 0.5  # the production cache lives KEY_CACHE_SECONDS
        assert (await client.delete(f"/api/v1/api-keys/{created['id']}", headers=owner["headers"])).status_code == 204
        deadline = time.monotonic() + 10
        status = 200
        while status == 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            status = (await other.get("/api/v1/products", headers=bearer(created["key"]))).status_code
        assert status == 401


async def test_malformed_unknown_and_tampered_keys_are_401(client):
    owner = await register(client)
    key = (await create_key(client, owner))["key"]
    tampered = key[:10] + ("A" if key[10] != "A" else "B") + key[11:]
    unknown = keys.generate()
    for token in ("stk_short", tampered, unknown, key + "x"):
        resp = await client.get("/api/v1/products", headers=bearer(token))
        assert resp.status_code == 401, token
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert resp.headers["www-authenticate"].startswith("Bearer")


async def test_scopes_and_unknown_fields_are_validated(client):
    owner = await register(client)
    for body in (
        {"name": "x", "scopes": ["write"]},
        {"name": "x", "scopes": ["read", "read"]},
        {"name": "x", "scopes": ["admin"]},
        {"name": "x", "scopes": []},
        {"name": ""},
        {"name": "x", "admin": True},
    ):
        resp = await client.post("/api/v1/api-keys", json=body, headers=owner["headers"])
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["code"] == "validation_error" and resp.json()["errors"]


async def test_another_tenants_key_ids_are_404(client):
    a, b = await register(client, "A"), await register(client, "B")
    key = await create_key(client, a)
    assert (await client.get(f"/api/v1/api-keys/{key['id']}", headers=b["headers"])).status_code == 404
    assert (await client.delete(f"/api/v1/api-keys/{key['id']}", headers=b["headers"])).status_code == 404
    assert (await client.get("/api/v1/api-keys", headers=b["headers"])).json()["items"] == []
    # A's key reads A's organization, never B's.
    assert (await client.get("/api/v1/members", headers=bearer(key["key"]))).json()["items"][0]["email"] == a["email"]


async def test_last_used_and_monthly_usage_count_key_calls(client):
    owner = await register(client)
    created = await create_key(client, owner)
    before = (await client.get("/api/v1/api-keys/usage", headers=owner["headers"])).json()
    assert before["api_calls"] == 0 and before["quota"] > 0 and len(before["period"]) == 7
    for _ in range(3):
        assert (await client.get("/api/v1/products", headers=bearer(created["key"]))).status_code == 200
    # Signed-in users (the dashboard) are not counted; key calls are, including this one.
    await client.get("/api/v1/products", headers=owner["headers"])
    via_key = (await client.get("/api/v1/api-keys/usage", headers=bearer(created["key"]))).json()
    assert via_key["api_calls"] == 4
    one = (await client.get(f"/api/v1/api-keys/{created['id']}", headers=owner["headers"])).json()
    assert one["last_used_at"] is not None


async def test_lookup_goes_only_through_the_definer_function(client, database, settings):
    owner = await register(client)
    created = await create_key(client, owner, scopes=["read", "write"])
    digest = keys.key_hash(keys.hash_secret(settings.api_key_secret, settings.jwt_secret), created["key"])
    conn = await asyncpg.connect(**_asyncpg_kwargs(database["app"]))
    try:
        # Without a tenant context the application role sees no key at all...
        assert await conn.fetchval("SELECT count(*) FROM api_keys") == 0
        # ...and the function answers only for the exact hash it is given.
        row = await conn.fetchrow("SELECT * FROM st_api_key_lookup($1)", digest)
        assert str(row["id"]) == created["id"] and str(row["tenant_id"]) == owner["tenant"]["id"]
        assert sorted(row["scopes"]) == ["read", "write"] and row["revoked"] is False
        assert await conn.fetchrow("SELECT * FROM st_api_key_lookup($1)", "0" * 64) is None
        owner_of = await conn.fetchval(
            "SELECT r.rolname FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner "
            "WHERE p.proname = 'st_api_key_lookup'"
        )
        assert owner_of == "stock_tracker_system"
    finally:
        await conn.close()


async def test_the_background_refresh_rereads_every_key_in_use_at_once(client, settings):
    """Keys in use are re-read together (one statement per refresh, however many keys); a key revoked
    meanwhile is refused after the next refresh even where its entry had not expired; idle keys drop out."""
    owner = await register(client)
    created = [await create_key(client, owner, name=f"k{i}") for i in range(3)]
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    resolver = ApiKeyResolver(
        create_sessionmaker(engine), keys.hash_secret(settings.api_key_secret, settings.jwt_secret), engine
    )
    try:
        for c in created:
            record, _ = await resolver.resolve(c["key"])
            assert str(record.id) == c["id"]
        assert await resolver.refresh() == 3
        # Revoke through the API (another process, as far as this resolver knows).
        resp = await client.delete(f"/api/v1/api-keys/{created[0]['id']}", headers=owner["headers"])
        assert resp.status_code == 204
        await resolver.resolve(created[0]["key"])  # still cached here, until the next refresh
        await resolver.refresh()
        with pytest.raises(AuthenticationError, match="revoked"):
            await resolver.resolve(created[0]["key"])
        assert (await resolver.resolve(created[1]["key"]))[0].revoked is False
        # A key unused for a minute is dropped at the next refresh (and looked up afresh if it comes back).
        digest = keys.key_hash(resolver.hash_secret, created[2]["key"])
        resolver._cache[digest].used -= 120
        await resolver.refresh()
        assert digest not in resolver._cache
        assert str((await resolver.resolve(created[2]["key"]))[0].id) == created[2]["id"]
    finally:
        await resolver.aclose()
        await engine.dispose()
