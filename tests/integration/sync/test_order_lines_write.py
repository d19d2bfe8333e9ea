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


class _Interrupted(RuntimeError):
    pass


class _FailingLines(OrderLines):
    """Order lines whose COPY rows run out part-way (a decode error, a dropped chunk): the rows before it are
    already on the wire (several of asyncpg's 512 KB COPY buffers), the COPY must not keep them."""

    def __init__(self, lines: list[OrderItem], fail_after: int) -> None:
        super().__init__(lines)
        self.fail_after = fail_after

    def copy_rows(self):  # type: ignore[no-untyped-def]
        for n, row in enumerate(super().copy_rows()):
            if n == self.fail_after:
                raise _Interrupted("the source failed mid-COPY")
            yield row


async def test_a_copy_whose_rows_fail_midway_writes_nothing_and_the_next_write_succeeds(scope, settings):  # noqa: F811
    """One streaming COPY per table (writer/_copy.py): rows sent before a failure of the row source are not
    kept — the error reaches the caller, the sync's transaction rolls back, the session is usable again."""
    import asyncpg
    import pytest

    sm, tid, cid = scope
    # ~1 KB of raw JSON each: 3 000 lines are ~6 of asyncpg's 512 KB COPY buffers, so the failure comes after
    # several were sent.
    lines = [
        dataclasses.replace(_order(f"srid-{i}", "100", "Коледино", "fbo"), raw={"pad": "я" * 500}) for i in range(3000)
    ]
    owner = await asyncpg.connect(settings.migration_database_url)
    try:
        with pytest.raises(_Interrupted):
            await write(sm, tid, cid, Snapshot(catalog=catalog(), orders=_FailingLines(lines, fail_after=2500)))
        assert await owner.fetchval("SELECT count(*) FROM order_lines WHERE connection_id = $1", cid) == 0
        assert await owner.fetchval("SELECT count(*) FROM products WHERE connection_id = $1", cid) == 0

        done = await write(sm, tid, cid, _snapshot(lines))
        assert (done.orders, done.orders_written) == (3000, 3000)
        assert await owner.fetchval("SELECT count(*) FROM order_lines WHERE connection_id = $1", cid) == 3000
    finally:
        await owner.close()
