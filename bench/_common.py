"""Shared pieces of the benchmarks: real servers (local or embedded), a migrated scratch database, output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from app.config import Settings  # noqa: E402
from tests.conftest import _dsn, create_database, drop_database  # noqa: E402
from tests.servers import provide_servers  # noqa: E402

RESULTS = ROOT / "bench" / "results"


@contextlib.asynccontextmanager
async def bench_settings(**overrides: Any) -> AsyncIterator[Settings]:
    """Settings pointing at a freshly migrated database (dropped afterwards) and a Redis."""
    from app.cli.bootstrap import run_migrations

    with provide_servers() as servers:
        name = f"st_bench_{secrets.token_hex(3)}"
        await create_database(servers.database_url, name)
        owner = _dsn(servers.database_url, database=name)
        password = "bench-" + secrets.token_hex(6)
        os.environ["STOCK_TRACKER_APP_DB_PASSWORD"] = password
        try:
            await asyncio.to_thread(run_migrations, owner)
            values: dict[str, Any] = {
                "env": "test",
                "database_url": _dsn(owner, user="stock_tracker_app", password=password),
                "migration_database_url": owner,
                "redis_url": servers.redis_url,
                "jwt_secret": "bench-" + "x" * 40,
                "encryption_keys": Fernet.generate_key().decode(),
                "log_level": "WARNING",
                "queue_name": f"arq:bench:{name}",
                "db_pool_size": 10,
            }
            values.update(overrides)
            yield Settings(**values)
        finally:
            await drop_database(servers.database_url, name)


async def add_wb_connection(sm: Any, cipher: Any, credentials: dict[str, Any], name: str = "bench") -> tuple[Any, Any]:
    """A tenant with one Wildberries connection (encrypted credentials), written directly; (tenant, connection)."""
    from app.db.engine import session_scope
    from app.db.models import Connection, Marketplace, Tenant
    from app.domain.connections.services import encrypt_credentials
    from app.lib.ids import uuid7

    tid, cid = uuid7(), uuid7()
    async with session_scope(sm, tid) as s:
        s.add(Tenant(id=tid, name=name))
        await s.flush()
        s.add(
            Connection(
                id=cid,
                tenant_id=tid,
                marketplace=Marketplace.WILDBERRIES,
                name=name,
                credentials_encrypted=encrypt_credentials(cipher, credentials),
            )
        )
    return tid, cid


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(name: str, figures: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str))
    width = max(len(k) for k in figures)
    print(f"\n== {name} ==")
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")
