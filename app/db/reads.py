"""Hot read paths: one statement on the pool's raw asyncpg connection, in one round trip.

A request served through the ORM pays, per request, a session, a pre-ping (three round trips with asyncpg),
``BEGIN``, the tenant's ``set_config``, one round trip per statement, and ``COMMIT``, plus SQLAlchemy's
statement construction and result processing in Python. ``read_one`` / ``read_rows`` run one prepared
statement (asyncpg caches them per connection) as its own transaction on a connection borrowed from the
engine's pool — one pool, one connection budget. Tenant reads keep both walls inside the statement: the
page functions (``st_product_page``, migration 0005) set ``app.tenant_id`` with ``set_config(…, true)``
for that statement's transaction only, so row-level security applies, and filter by tenant themselves.

A connection the server dropped (a database restart) fails on its first statement: every connection of
that generation is invalidated, as SQLAlchemy does on a disconnect, and the statement is retried once on
a fresh one. The statements only read, so a retry cannot repeat an effect.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import greenlet_spawn


def _dropped(conn: Any, exc: BaseException) -> bool:
    """Whether ``exc`` means the connection is gone (as opposed to a statement the server refused)."""
    if conn.is_closed():
        return True
    if isinstance(exc, asyncpg.PostgresError):
        # 08: connection exception; 57P: operator intervention (the server is shutting down or restarting).
        state = getattr(exc, "sqlstate", "") or ""
        return state.startswith(("08", "57P"))
    return isinstance(exc, asyncpg.InterfaceError | OSError | ConnectionError)


async def _discard(engine: AsyncEngine, fairy: Any, exc: BaseException, *, generation: bool) -> None:
    """Close this connection for good (it goes back to the pool as an empty slot). With ``generation``, every
    connection opened before it is replaced at its next checkout too — the server dropped them all; this is
    what SQLAlchemy itself does on a disconnect."""
    if generation:
        pool: Any = engine.sync_engine.pool
        await greenlet_spawn(pool._invalidate, fairy, exc)
    else:
        await greenlet_spawn(fairy.invalidate, exc)


async def _release(fairy: Any) -> None:
    await greenlet_spawn(fairy.close)


async def read_one(engine: AsyncEngine, sql: str, *args: Any) -> Any:
    """One read-only statement outside an explicit transaction, in one round trip: its first row or None."""
    return await _statement(engine, "fetchrow", sql, args)


async def read_rows(engine: AsyncEngine, sql: str, *args: Any) -> list[Any]:
    """One read-only statement outside an explicit transaction, in one round trip: every row."""
    rows: list[Any] = await _statement(engine, "fetch", sql, args)
    return rows


async def _statement(engine: AsyncEngine, method: str, sql: str, args: tuple[Any, ...]) -> Any:
    """The statement is its own transaction: anything it sets locally (``set_config(…, true)``, as the
    SECURITY INVOKER page functions do) ends with it. It only reads, so it is retried once on a fresh
    connection when the pooled one turns out to have been dropped by the server."""
    for attempt in (1, 2):
        fairy = await engine.raw_connection()
        conn: asyncpg.Connection = fairy.driver_connection
        try:
            result = await getattr(conn, method)(sql, *args)
        except BaseException as exc:
            if isinstance(exc, Exception) and _dropped(conn, exc):
                await _discard(engine, fairy, exc, generation=True)
                if attempt == 1:
                    continue
            elif isinstance(exc, Exception):
                await _release(fairy)  # the statement failed; the connection is fine and idle
            else:
                conn.terminate()
                await _discard(engine, fairy, exc, generation=False)
            raise
        await _release(fairy)
        return result
    raise AssertionError("unreachable")
