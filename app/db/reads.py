"""Hot read paths: one short read-only transaction on the pool's raw asyncpg connection.

A request served through the ORM pays, per request, a session, a pre-ping (three round trips with asyncpg),
``BEGIN``, the tenant's ``set_config``, one round trip per statement, and ``COMMIT``, plus SQLAlchemy's
statement construction and result processing in Python. ``read_transaction`` keeps the same two walls and
drops the rest:

* ``BEGIN READ ONLY`` and ``set_config('app.tenant_id', …, true)`` go in *one* round trip (a simple-query
  batch; the tenant id is a ``uuid.UUID``, rendered by Python, never text from a request), so row-level
  security scopes every statement of the transaction exactly as on the ORM path; the queries still filter
  by tenant themselves (the first wall);
* the caller runs prepared statements (asyncpg caches them per connection) and ``COMMIT`` ends it;
* the connection is borrowed from the engine's own pool, so there is one pool and one connection budget.

A connection the server dropped (a database restart) fails at ``BEGIN``: every connection of that
generation is invalidated, as SQLAlchemy does on a disconnect, and the transaction is retried once on a
fresh one. Nothing has run by then, so the retry cannot repeat an effect (and nothing here writes).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import greenlet_spawn


def _begin(tenant_id: uuid.UUID | None) -> str:
    if tenant_id is None:
        return "BEGIN READ ONLY"
    # str(UUID) is 36 characters of hex and dashes: safe to render into the statement.
    return f"BEGIN READ ONLY; SELECT set_config('app.tenant_id', '{uuid.UUID(str(tenant_id))}', true)"


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


@asynccontextmanager
async def read_transaction(engine: AsyncEngine, tenant_id: uuid.UUID | None) -> AsyncIterator[asyncpg.Connection]:
    """A read-only transaction scoped to ``tenant_id`` (RLS), on a raw asyncpg connection of the pool."""
    begin = _begin(tenant_id)
    for attempt in (1, 2):
        fairy = await engine.raw_connection()
        conn: asyncpg.Connection = fairy.driver_connection
        try:
            await conn.execute(begin)
        except Exception as exc:
            if _dropped(conn, exc):
                await _discard(engine, fairy, exc, generation=True)
                if attempt == 1:
                    continue
            else:
                await _end(engine, fairy, conn, exc)
            raise
        break
    try:
        yield conn
    except BaseException as exc:
        await _end(engine, fairy, conn, exc)
        raise
    try:
        await conn.execute("COMMIT")
    except BaseException as exc:
        await _end(engine, fairy, conn, exc)
        raise
    await _release(fairy)


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


async def _end(engine: AsyncEngine, fairy: Any, conn: Any, exc: BaseException) -> None:
    """After a failure: roll back and return the connection, or drop it when its state is unknown."""
    if isinstance(exc, Exception) and _dropped(conn, exc):
        await _discard(engine, fairy, exc, generation=True)
        return
    if not isinstance(exc, Exception):
        # Cancelled mid-statement: the protocol state is unknown; never reuse this connection.
        conn.terminate()
        await _discard(engine, fairy, exc, generation=False)
        return
    try:
        await conn.execute("ROLLBACK")
    except Exception as rollback_error:
        if not conn.is_closed():
            conn.terminate()
        await _discard(engine, fairy, rollback_error, generation=False)
        return
    await _release(fairy)
