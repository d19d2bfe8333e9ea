"""The reports area's repositories apply their tenant to every read, update and delete, and row-level security
hides another tenant's report rows from any statement at all."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import select, text

from app.db.engine import create_engine, create_sessionmaker, session_scope
from app.db.models.reports import Reconciliation, ReconciliationRow, ReportSettings, RestockOverride, SheetLink
from app.domain.reports.repositories import ReconciliationRepository, SettingsRepository, SheetLinkRepository
from tests.contract.support import service_account_key
from tests.helpers import register


async def test_tenant_b_cannot_read_change_or_delete_tenant_as_report_rows(client, settings):
    a = await register(client, "A")
    b = await register(client, "B")
    a_tid, b_tid = uuid.UUID(a["tenant"]["id"]), uuid.UUID(b["tenant"]["id"])
    link = await client.post(
        "/api/v1/reports/sheets", json={"spreadsheet_id": "a-sheet", "service_account": service_account_key()},
        headers=a["headers"],
    )  # fmt: skip
    assert link.status_code == 201, link.text
    link_id = uuid.UUID(link.json()["id"])
    assert (
        await client.patch("/api/v1/reports/settings", json={"locale": "en"}, headers=a["headers"])
    ).status_code == 200
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    sm = create_sessionmaker(engine)
    try:
        async with session_scope(sm, a_tid) as s:
            conn_id = (await s.execute(text("SELECT gen_random_uuid()"))).scalar_one()
            await s.execute(
                text(
                    "INSERT INTO connections (id, tenant_id, marketplace, name, credentials_encrypted, status) "
                    "VALUES (:id, :tid, 'wildberries', 'A shop', '\\x00', 'active')"
                ),
                {"id": conn_id, "tid": a_tid},
            )
            repo = ReconciliationRepository(s, a_tid)
            rec = repo.add(
                Reconciliation(
                    connection_id=conn_id, file_name="a.csv", file_format="csv", file_bytes=1,
                    period_start=date(2026, 12, 1), period_end=date(2026, 12, 5), period_source="form", rows_total=1,
                    pseudo_rows_skipped=0, summary={},
                )
            )  # fmt: skip
            await s.flush()
            await repo.add_rows(rec.id, [{"position": 0, "status": "only_theirs", "line": 3, "external_id": "1",
                                          "vendor_code": None, "title": None, "size": "M", "warehouse": "Склад WB",
                                          "product_id": None, "variant_id": None, "their_stock": 1, "our_stock": None,
                                          "stock_difference": None, "stock_difference_pct": None, "their_orders": 0,
                                          "our_orders": None, "orders_difference": None,
                                          "orders_difference_pct": None, "note": "x"}])  # fmt: skip
            rec_id = rec.id
        # B's repositories under A's row-level security context: the repository filter alone holds the wall.
        async with session_scope(sm, a_tid) as s:
            links = SheetLinkRepository(s, b_tid)
            assert await links.get(link_id) is None and await links.all() == []
            assert await links.update_where({"sheet_name": "stolen"}, SheetLink.id == link_id) == 0
            assert await links.delete_where() == 0
            recs = ReconciliationRepository(s, b_tid)
            assert await recs.get(rec_id) is None
            assert await recs.rows_page(rec_id, None, 10, None, False) == []
            assert await recs.delete(rec_id) is False
            assert await SettingsRepository(s, b_tid).get() is None
            assert await SettingsRepository(s, b_tid).delete_override(uuid.uuid4()) is False
        async with session_scope(sm, a_tid) as s:
            assert (await SheetLinkRepository(s, a_tid).get(link_id)).sheet_name == "Stock"  # type: ignore[union-attr]
            assert await ReconciliationRepository(s, a_tid).get(rec_id) is not None
            assert (await SettingsRepository(s, a_tid).get()).locale == "en"  # type: ignore[union-attr]
        # And with B's context, A's rows are invisible to any statement (row-level security).
        async with session_scope(sm, b_tid) as s:
            for model in (SheetLink, Reconciliation, ReconciliationRow, ReportSettings, RestockOverride):
                assert (await s.execute(select(model))).all() == [], model.__tablename__
    finally:
        await engine.dispose()
