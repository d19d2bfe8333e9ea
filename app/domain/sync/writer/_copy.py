"""The two moves every part of the writer makes: reach asyncpg under the session, and COPY into a temp table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


async def raw_connection(session: AsyncSession) -> Any:
    """asyncpg's connection under the session's transaction (COPY and ``$n`` statements need it)."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def copy_into(
    raw: Any,
    table: str,
    columns: list[str],
    records: Iterable[tuple[Any, ...]],
    *,
    analyze: Sequence[str] | None = None,
) -> None:
    """Fill a temporary table with one COPY (COPY straight into an RLS table is refused), then analyse it.

    ``records`` may be (and for the large tables is) a generator: asyncpg's binary COPY takes one row from it
    at a time, encodes it into a 512 KB buffer and sends each full buffer as it goes (waiting while the
    socket is busy), so the rows never all exist at once — 150 000 encoded order lines of a first sync would
    be ~200 MB — and one COPY is one round trip, however many rows (batches of 1 000 lines cost ~5 ms each
    on a 2-core host: issue 13, seventh stop). A generator that raises ends the COPY: the error propagates
    and the transaction rolls back. ``analyze`` names the columns worth statistics (the ones the statements
    join or filter on); default: all of them."""
    await raw.copy_records_to_table(table, records=records, columns=columns)
    # Temporary tables have no statistics until analysed: without them the planner picks nested loops.
    await raw.execute(f"ANALYZE {table} ({', '.join(analyze)})" if analyze else f"ANALYZE {table}")
