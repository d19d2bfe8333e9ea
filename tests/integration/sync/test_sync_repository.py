"""SyncRepository: every statement of the sync outside the writer is scoped to its tenant."""

from __future__ import annotations

import pytest

from app.db.engine import create_engine, create_sessionmaker, session_scope, set_tenant
from app.db.models import Connection, ConnectionStatus, Marketplace, SyncRun, SyncStatus, Tenant
from app.domain.sync.model import CatalogItem, Snapshot, StockRow, VariantItem, WarehouseItem
from app.domain.sync.repositories import SyncRepository
from app.domain.sync.writer import SnapshotWriter, WriteCounts
from app.lib.clock import utcnow
from app.lib.ids import uuid7


@pytest.fixture
async def tenant_a(settings):
    """Tenant A with one connection that has a catalogue, a warehouse and a queued run."""
    engine = create_engine(settings, pool_size=2, max_overflow=0)
    sm = create_sessionmaker(engine)
    tid, cid, rid = uuid7(), uuid7(), uuid7()
    async with session_scope(sm) as s:
        await set_tenant(s, tid)
        s.add(Tenant(id=tid, name="A"))
        await s.flush()
        s.add(
            Connection(id=cid, tenant_id=tid, marketplace=Marketplace.WILDBERRIES, name="a", credentials_encrypted=b"x")
        )
        await s.flush()
        s.add(SyncRun(id=rid, tenant_id=tid, connection_id=cid, trigger="manual", counts={}, stages={}))
    async with session_scope(sm, tid) as s:
        writer = SnapshotWriter(s, tid, cid, "wildberries")
        snap = Snapshot(
            catalog=[CatalogItem("100", "V-1", "Shirt", variants=[VariantItem("1001", "M")])],
            warehouses=[WarehouseItem("77", "Мой склад", "fbs")],
            stock=[StockRow("100", "1001", "77", 5)],
            covered_fbs={"77"},
        )
        await writer.write_catalog(snap.catalog)
        await writer.write_warehouses(snap)
        await writer.write_stock(snap, rid, utcnow(), WriteCounts())
    yield sm, tid, cid, rid
    await engine.dispose()


async def test_another_tenants_repository_cannot_read_or_change_the_sync_state(tenant_a):
    sm, tid, cid, rid = tenant_a
    b = uuid7()
    # Tenant B's repository, even with tenant A's RLS context set: the repository filter alone holds the wall.
    async with session_scope(sm, tid) as s:
        repo = SyncRepository(s, b)
        assert await repo.connection(cid) is None
        assert await repo.known_variants(cid) == []
        assert await repo.known_warehouses(cid) == {}
        await repo.start_run(rid, utcnow())
        await repo.renew_lease(rid, utcnow())
        assert not await repo.hold_run(rid, "sync:x+1", "not yours", utcnow())
        assert await repo.run_state(rid) is None
        await repo.record_attempt(cid)
        await repo.requeue_run(rid, "not yours", {"x": {}})
        assert await repo.finish_run(rid, SyncStatus.FAILED, counts={}, stages={}, error_code="x", error="x") is None
        await repo.record_refused(cid, "401: not yours")
        await repo.record_synced(cid, SyncStatus.SUCCEEDED, utcnow(), {"cards": {"nmID": 1}})
        await repo.record_failed(cid)
    async with session_scope(sm, tid) as s:
        repo = SyncRepository(s, tid)
        conn = await repo.connection(cid)
        assert conn is not None
        assert conn.status is ConnectionStatus.ACTIVE and conn.last_sync_status is None and conn.sync_cursor is None
        assert conn.last_attempt_at is None and conn.last_outcome is None
        assert await repo.known_variants(cid) == [("100", "1001")]
        assert await repo.known_warehouses(cid) == {"Мой склад": "77"}
        run = await s.get(SyncRun, rid)
        assert run is not None
        assert (run.status, run.attempts, run.error, run.started_at, run.finished_at) == (
            SyncStatus.QUEUED,
            0,
            None,
            None,
            None,
        )


async def test_finishing_a_run_returns_its_connection_and_real_duration(tenant_a):
    sm, tid, cid, rid = tenant_a
    async with session_scope(sm, tid) as s:
        await SyncRepository(s, tid).start_run(rid, utcnow())
    async with session_scope(sm, tid) as s:
        repo = SyncRepository(s, tid)
        done = await repo.finish_run(rid, SyncStatus.FAILED, counts={}, stages={}, error_code="x", error="y")
        run = await s.get(SyncRun, rid)
    assert done is not None and run is not None
    assert done.connection_id == cid
    assert run.started_at is not None and run.finished_at is not None
    assert done.seconds == (run.finished_at - run.started_at).total_seconds() > 0
