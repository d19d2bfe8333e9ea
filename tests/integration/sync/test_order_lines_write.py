"""Order lines: a connection's first lines take a plain INSERT, later ones the upsert (a cancellation updates
the stored line, an identical line writes nothing), and deleting the connection removes its lines through the
statement-level trigger of migration 0013 (no per-row foreign key) — counted by the owner, so that nothing
row-level security would hide is left."""

from __future__ import annotations

import dataclasses

from sqlalchemy import delete

from app.db.engine import session_scope
from app.db.models import Connection
from app.domain.sync.model import OrderItem, OrderLines, Snapshot
from tests.integration.sync.test_sync_rules import _order, catalog, scope, write  # noqa: F401 (the fixture)


def _snapshot(lines: list[OrderItem]) -> Snapshot:
    return Snapshot(catalog=catalog(), orders=OrderLines(lines))


async def test_first_lines_insert_then_upsert_then_cascade_with_the_connection(scope, settings):  # noqa: F811
    import asyncpg

    sm, tid, cid = scope
    lines = [_order(f"srid-{i}", "100", "Коледино", "fbo") for i in range(5)]
    owner = await asyncpg.connect(settings.migration_database_url)
    try:

        async def stored() -> dict[str, bool]:
            rows = await owner.fetch("SELECT external_id, is_cancel FROM order_lines WHERE connection_id = $1", cid)
            return {r["external_id"]: r["is_cancel"] for r in rows}

        first = await write(sm, tid, cid, _snapshot(lines))
        assert (first.orders, first.orders_written) == (5, 5)
        assert await stored() == {f"srid-{i}": False for i in range(5)}

        again = await write(sm, tid, cid, _snapshot(lines))  # the upsert path: nothing moved, nothing written
        assert (again.orders, again.orders_written) == (5, 0)

        cancelled = dataclasses.replace(lines[2], is_cancel=True)
        later = await write(sm, tid, cid, _snapshot([*lines[:2], cancelled, _order("srid-9", "200", "Тула", "fbo")]))
        assert (later.orders, later.orders_written) == (4, 2)  # one cancellation updated, one new line
        assert (await stored())["srid-2"] is True and len(await stored()) == 6

        async with session_scope(sm, tid) as s:  # as the application role
            await s.execute(delete(Connection).where(Connection.id == cid))
        assert await stored() == {}
        assert await owner.fetchval("SELECT count(*) FROM order_lines WHERE tenant_id = $1", tid) == 0
    finally:
        await owner.close()
