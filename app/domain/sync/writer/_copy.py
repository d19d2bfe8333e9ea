"""The two moves every part of the writer makes: reach asyncpg under the session, and COPY into a temp table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def raw_connection(session: AsyncSession) -> Any:
    """asyncpg's connection under the session's transaction (COPY and ``$n`` statements need it)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


COPY_CHUNK = 20_000


async def copy_into(
    raw: Any,
    table: str,
    columns: list[str],
    records: Iterable[tuple[Any, ...]],
    chunk: int = COPY_CHUNK,
    *,
    analyze: Sequence[str] | None = None,
) -> None:
    """Fill a temporary table with COPY (COPY straight into an RLS table is refused), then analyse it.

    ``records`` may be a generator: it is consumed ``COPY_CHUNK`` rows at a time, so the rows built for the
    COPY (150 000 encoded order lines of a first sync: ~200 MB) never all exist at once. Wide rows (an order
    line's raw JSON) take a smaller ``chunk``. ``analyze`` names the columns worth statistics (the ones the
    statements join or filter on); default: all of them."""
    it = iter(records)
    while rows := list(islice(it, chunk)):
        await raw.copy_records_to_table(table, records=rows, columns=columns)
    # Temporary tables have no statistics until analysed: without them the planner picks nested loops.
    await raw.execute(f"ANALYZE {table} ({', '.join(analyze)})" if analyze else f"ANALYZE {table}")
