"""Session-wide real servers, a freshly migrated database, settings, the app and an HTTP client."""

from __future__ import annotations

import asyncio
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from app.config import Settings
from tests.servers import TestServers, provide_servers

APP_ROLE_PASSWORD = "app-" + secrets.token_hex(8)
METRICS_TOKEN = "metrics-" + secrets.token_hex(8)
METRICS_HEADERS = {"Authorization": f"Bearer {METRICS_TOKEN}"}
SESSION_TAG = secrets.token_hex(4)


def _dsn(url: str, database: str | None = None, user: str | None = None, password: str | None = None) -> str:
    u = make_url(url).set(drivername="postgresql")
    if database is not None:
        u = u.set(database=database)
    if user is not None:
        u = u.set(username=user, password=password)
    return u.render_as_string(hide_password=False)


def _asyncpg_kwargs(url: str) -> dict[str, Any]:
    u = make_url(url)
    kwargs: dict[str, Any] = {
        "user": u.username or "postgres",
        "password": u.password or None,
        "database": u.database or "postgres",
    }
    if "host" in u.query:
        kwargs["host"] = u.query["host"]
    else:
        kwargs["host"] = u.host or "127.0.0.1"
        kwargs["port"] = u.port or 5432
    return kwargs


async def create_database(owner_url: str, name: str) -> None:
    conn = await asyncpg.connect(**_asyncpg_kwargs(owner_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(owner_url: str, name: str) -> None:
    conn = await asyncpg.connect(**_asyncpg_kwargs(owner_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def servers() -> Iterator[TestServers]:
    with provide_servers() as s:
        yield s


@pytest.fixture(scope="session")
def database(servers: TestServers) -> Iterator[dict[str, str]]:
    """A fresh database built by the migrations (not create_all), dropped at the end."""
    from app.cli.bootstrap import run_migrations

    name = f"st_test_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(create_database(servers.database_url, name))
    owner = _dsn(servers.database_url, database=name)
    os.environ["STOCK_TRACKER_APP_DB_PASSWORD"] = APP_ROLE_PASSWORD
    run_migrations(owner)
    app_url = _dsn(owner, user="stock_tracker_app", password=APP_ROLE_PASSWORD)
    yield {"owner": owner, "app": app_url, "name": name, "maintenance": servers.database_url}
    asyncio.run(drop_database(servers.database_url, name))


def make_settings(database: dict[str, str], redis_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": database["app"],
        "migration_database_url": database["owner"],
        "redis_url": redis_url,
        "jwt_secret": "test-" + "x" * 40,
        "encryption_keys": TEST_FERNET_KEY,
        "log_format": "console",
        "log_level": "WARNING",
        "db_pool_size": 5,
        "db_max_overflow": 10,
        "sandbox_enabled": True,
        # Sandbox sellers here run with their limits off; the limit tests turn both on explicitly.
        "marketplace_rate_limits": False,
        # A queue of this session's own: parallel runs sharing one Redis never take each other's jobs.
        "queue_name": f"arq:test:{SESSION_TAG}",
        # /metrics answers only this bearer token (tests send METRICS_HEADERS).
        "metrics_token": METRICS_TOKEN,
    }
    values.update(overrides)
    return Settings(**values)


TEST_FERNET_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def redis_url(servers: TestServers) -> str:
    return servers.redis_url


@pytest.fixture(scope="session")
def marketplace_sandbox() -> Iterator[str]:
    """The sandbox marketplace on a real loopback port (the sync engine talks to it over HTTP)."""
    from tests.sandbox_server import serve_sandbox

    with serve_sandbox() as url:
        yield url


@pytest.fixture(scope="session")
def settings(database: dict[str, str], redis_url: str, marketplace_sandbox: str) -> Settings:
    return make_settings(
        database, redis_url, wb_base_url=f"{marketplace_sandbox}/wb", ozon_base_url=f"{marketplace_sandbox}/ozon"
    )


@pytest.fixture(scope="session")
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def app(settings: Settings) -> Litestar:
    from app.server.app import create_app

    return create_app(settings, mount_sandbox=False)


@pytest.fixture(scope="session")
async def client(app: Litestar, redis: Redis) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as c:
        yield c


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
async def account(client: AsyncTestClient[Litestar]) -> dict[str, Any]:
    """A freshly registered owner with its tokens and an auth header."""
    email = unique_email("owner")
    resp = await client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": "correct horse battery", "organization_name": "Acme"},
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    body["email"] = email
    body["password"] = "correct horse battery"
    body["headers"] = {"Authorization": f"Bearer {body['tokens']['access_token']}"}
    return body
