"""The two moves every part of the writer makes: reach asyncpg under the session, and COPY into a temp table."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def raw_connection(session: AsyncSession) -> Any:
    """asyncpg's connection under the session's transaction (COPY and ``$n`` statements need it)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def copy_into(raw: Any, table: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
    """Fill a temporary table with COPY (COPY straight into an RLS table is refused), then analyse it."""
    if records:
        await raw.copy_records_to_table(table, records=records, columns=columns)
    # Temporary tables have no statistics until analysed: without them the planner picks nested loops.
    await raw.execute(f"ANALYZE {table}")
