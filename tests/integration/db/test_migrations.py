"""The migration chain upgrades an empty database and downgrades back to empty."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg

from app.cli.bootstrap import run_migrations
from tests.conftest import _asyncpg_kwargs, _dsn, create_database, drop_database


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(**_asyncpg_kwargs(url))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


def test_upgrade_downgrade_upgrade(servers):
    name = f"st_mig_{secrets.token_hex(4)}"
    asyncio.run(create_database(servers.database_url, name))
    url = _dsn(servers.database_url, database=name)
    try:
        run_migrations(url)
        tables = asyncio.run(_tables(url))
        assert {"tenants", "users", "memberships", "refresh_tokens", "outbox", "audit_events"} <= tables
        run_migrations(url, "base", downgrade=True)
        assert asyncio.run(_tables(url)) <= {"alembic_version"}
        run_migrations(url)  # and up again: the chain is repeatable
        assert "tenants" in asyncio.run(_tables(url))
    finally:
        asyncio.run(drop_database(servers.database_url, name))
