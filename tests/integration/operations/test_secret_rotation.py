"""Rotating secrets keeps what exists working: access tokens signed with JWT_SECRET_PREVIOUS, API keys hashed
with API_KEY_SECRET_PREVIOUS (or with the key derived from the JWT secret, before an API_KEY_SECRET was set),
data encrypted under ENCRYPTION_KEYS_PREVIOUS until `stock-tracker secrets rotate` re-encrypts it."""

from __future__ import annotations

import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from cryptography.fernet import Fernet, InvalidToken
from litestar.testing import AsyncTestClient

from app.config import Settings
from app.domain.apikeys import keys
from app.lib.crypto import CredentialCipher
from app.server.app import create_app
from tests.conftest import _asyncpg_kwargs
from tests.helpers import register
from tests.integration.operations.support import ROOT, deployment_env
from tests.sync_support import connect, make_seller, sync_now


@asynccontextmanager
async def api(settings: Settings, **changes: Any) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(
        app=create_app(msgspec.structs.replace(settings, **changes)), base_url="http://testserver.local"
    ) as c:
        yield c


async def test_access_tokens_of_the_previous_jwt_secret_keep_working(settings):
    async with api(settings) as old:
        owner = await register(old)
    new_secret = secrets.token_urlsafe(48)
    async with api(settings, jwt_secret=new_secret) as without_previous:
        assert (await without_previous.get("/api/v1/me", headers=owner["headers"])).status_code == 401
    async with api(settings, jwt_secret=new_secret, jwt_secret_previous=settings.jwt_secret) as rotated:
        assert (await rotated.get("/api/v1/me", headers=owner["headers"])).status_code == 200
        # New tokens are signed with the new secret only.
        fresh = await rotated.post(
            "/api/v1/auth/login", json={"email": owner["email"], "password": "correct horse battery"}
        )
    async with api(settings) as old_only:
        h = {"Authorization": f"Bearer {fresh.json()['access_token']}"}
        assert (await old_only.get("/api/v1/me", headers=h)).status_code == 401


async def _key(c: AsyncTestClient[Any]) -> tuple[str, dict[str, str]]:
    owner = await register(c)
    made = await c.post("/api/v1/api-keys", json={"name": "rot", "scopes": ["read"]}, headers=owner["headers"])
    assert made.status_code == 201, made.text
    return made.json()["id"], {"Authorization": f"Bearer {made.json()['key']}"}


async def _stored_hash(database: dict[str, str], key_id: str) -> str:
    db = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    try:
        return str(await db.fetchval("SELECT key_hash FROM api_keys WHERE id = $1", uuid.UUID(key_id)))
    finally:
        await db.close()


async def test_api_keys_survive_a_rotation_of_the_api_key_secret(settings, database):
    k1, k2 = secrets.token_urlsafe(48), secrets.token_urlsafe(48)
    async with api(settings, api_key_secret=k1) as first:
        key_id, key_headers = await _key(first)
    key = key_headers["Authorization"].removeprefix("Bearer ")
    assert await _stored_hash(database, key_id) == keys.key_hash(k1.encode(), key)
    async with api(settings, api_key_secret=k2) as without_previous:  # what a bare change used to do
        assert (await without_previous.get("/api/v1/products", headers=key_headers)).status_code == 401
    async with api(settings, api_key_secret=k2, api_key_secret_previous=k1) as rotated:
        assert (await rotated.get("/api/v1/products", headers=key_headers)).status_code == 200
    # Used once after the rotation, the key is stored under the new secret: the previous one can go.
    assert await _stored_hash(database, key_id) == keys.key_hash(k2.encode(), key)
    async with api(settings, api_key_secret=k2) as after:
        assert (await after.get("/api/v1/products", headers=key_headers)).status_code == 200


async def test_keys_hashed_before_an_api_key_secret_was_set_keep_working(settings, database):
    assert settings.api_key_secret == ""  # keys hashed with the key derived from the JWT secret
    async with api(settings) as before:
        _, key_headers = await _key(before)
    async with api(settings, api_key_secret=secrets.token_urlsafe(48)) as configured:
        assert (await configured.get("/api/v1/products", headers=key_headers)).status_code == 200
    # A JWT rotation with JWT_SECRET_PREVIOUS keeps derived-key hashes working too.
    async with api(settings) as again:
        _, other_headers = await _key(again)
    async with api(
        settings, jwt_secret=secrets.token_urlsafe(48), jwt_secret_previous=settings.jwt_secret
    ) as jwt_rotated:
        assert (await jwt_rotated.get("/api/v1/products", headers=other_headers)).status_code == 200


def _decrypts(blob: bytes, key: str) -> bool:
    try:
        CredentialCipher([key]).decrypt(blob)
        return True
    except InvalidToken:
        return False


def _rotate(settings: Settings) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "secrets", "rotate"],
        cwd=ROOT,
        env=deployment_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_encryption_key_rotation_and_secrets_rotate(settings, database, marketplace_sandbox):
    base = msgspec.structs.replace(settings, webhook_allowed_networks="127.0.0.0/8")
    old_key, new_key = settings.encryption_keys, Fernet.generate_key().decode()
    seller = make_seller(marketplace_sandbox, products=2, warehouses=1, seed=157)
    db = await asyncpg.connect(**_asyncpg_kwargs(database["owner"]))
    rotated = msgspec.structs.replace(base, encryption_keys=new_key, encryption_keys_previous=old_key)
    back = msgspec.structs.replace(base, encryption_keys=old_key, encryption_keys_previous=new_key)
    try:
        async with api(base) as c:
            owner = await register(c)
            conn = await connect(c, owner["headers"], seller)
            endpoint = await c.post(
                "/api/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook"}, headers=owner["headers"]
            )
            assert endpoint.status_code == 201, endpoint.text
            assert (
                await c.post(
                    f"/api/v1/webhook-endpoints/{endpoint.json()['id']}/rotate-secret", headers=owner["headers"]
                )
            ).status_code in (200, 201)  # a previous signing secret is stored too
        conn_id, endpoint_id = uuid.UUID(conn["id"]), uuid.UUID(endpoint.json()["id"])

        # The new key encrypts, the previous one still decrypts: a sync reads the stored token.
        async with api(rotated) as c:
            run = await sync_now(c, rotated, owner["headers"], conn["id"])
            assert run["status"] == "succeeded", run

        out = _rotate(rotated)
        assert "re-encrypted" in out.stdout and "marketplace credentials" in out.stdout, out.stdout + out.stderr
        assert str(conn_id) not in out.stderr and str(endpoint_id) not in out.stderr
        creds = await db.fetchval("SELECT credentials_encrypted FROM connections WHERE id = $1", conn_id)
        secret, previous = await db.fetchrow(
            "SELECT secret_encrypted, previous_secret_encrypted FROM webhook_endpoints WHERE id = $1", endpoint_id
        )
        assert previous is not None
        for blob in (creds, secret, previous):
            assert _decrypts(blob, new_key) and not _decrypts(blob, old_key)
        # Everything is under the new key: the previous one can be dropped.
        async with api(msgspec.structs.replace(base, encryption_keys=new_key)) as c:
            check = await c.post(f"/api/v1/connections/{conn['id']}/check", headers=owner["headers"])
            assert check.status_code == 200 and check.json()["status"] == "active", check.text
    finally:
        _rotate(back)  # the rest of the suite's data goes back under the test key
        await db.close()
        seller.delete()
