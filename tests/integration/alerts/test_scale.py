"""A 5 000-product seller whose sync moves 300 alerts at once, through the set-based evaluation: every
transition published exactly once (webhook deliveries and events counted in the database), none on a
rerun, and a resync that changed nothing judging only the open alerts."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import func, select

from app.db.models.notifications import Alert, AlertEvaluation, Event, WebhookDelivery
from tests.fakes import drain, sync_and_evaluate, tenant_session, worker_context
from tests.helpers import explained_plan, join_filter_comparisons, register
from tests.integration.alerts.support import STOCK_EVENTS, Shop
from tests.sync_support import connect, make_seller


async def test_a_5000_product_sync_with_300_transitions(api, st, marketplace_sandbox, receiver):
    owner = await register(api)
    seller = make_seller(marketplace_sandbox, "wildberries", products=5000, warehouses=1, seed=97)
    try:
        conn = await connect(api, owner["headers"], seller)
        path = f"/scale-{uuid.uuid4().hex[:8]}"
        resp = await api.post(
            "/api/v1/webhook-endpoints",
            json={"url": receiver.url(path), "event_types": STOCK_EVENTS},
            headers=owner["headers"],
        )
        assert resp.status_code == 201
        shop = Shop(owner, seller, conn, resp.json(), path, 0)
        pids = list(shop.cells)
        assert len(pids) == 5000
        out_first, going_low, going_out = pids[:100], pids[100:250], pids[250:300]

        # The baseline: 100 products out of stock, opened silently, one digest.
        shop.set(dict.fromkeys(out_first, 0))
        await sync_and_evaluate(st, shop.tid, conn["id"])
        # The organization lets up to 1 000 alerts a sync go out one by one.
        rule = {"units_below": 5, "max_alerts_per_sync": 1000}
        assert (await api.put("/api/v1/alert-rules/default", json=rule, headers=shop.h)).status_code == 200

        # 100 restocked, 150 low, 50 out: 300 transitions in one sync.
        shop.set({**dict.fromkeys(going_low, 2), **dict.fromkeys(going_out, 0)})
        run_id = await sync_and_evaluate(st, shop.tid, conn["id"])
        async with worker_context(st) as ctx:  # the same evaluation again (a job that ran twice)
            await ctx["redis"].enqueue_job(
                "alerts.evaluate",
                tenant_id=shop.tid,
                connection_id=conn["id"],
                run_id=run_id,
                _job_id=f"alerts:{run_id}:again",
            )
        await drain(st)
        receiver.wait_for(path, 301, timeout=60)

        async with tenant_session(st, shop.tid) as s:
            events = (await s.execute(select(Event.type, Event.data).where(Event.type.like("stock.%")))).all()
            deliveries = (await s.execute(select(func.count()).select_from(WebhookDelivery))).scalar_one()
            status = Counter((await s.execute(select(Alert.status, Alert.level))).all())
            [evaluation] = (
                (await s.execute(select(AlertEvaluation.counts).where(AlertEvaluation.run_id == uuid.UUID(run_id))))
                .scalars()
                .all()
            )
        by_type = Counter(t for t, _ in events)
        assert by_type == {"stock.digest": 1, "stock.restored": 100, "stock.low": 150, "stock.out": 50}
        per_alert = Counter((t, d["alert_id"]) for t, d in events if t != "stock.digest")
        assert len(per_alert) == 300 and set(per_alert.values()) == {1}
        assert {d["product"]["external_id"] for t, d in events if t == "stock.restored"} == set(out_first)
        assert {d["product"]["external_id"] for t, d in events if t == "stock.low"} == set(going_low)
        assert deliveries == 301 and len(receiver.at(path)) == 301
        assert status == {("open", "low"): 150, ("open", "out"): 50, ("resolved", "out"): 100}
        assert evaluation["opened"] == 200 and evaluation["resolved"] == 100 and evaluation["digest"] is None

        # Nothing changed: only the 200 open alerts' products are judged, nothing is sent.
        run_id = await sync_and_evaluate(st, shop.tid, conn["id"])
        async with tenant_session(st, shop.tid) as s:
            [evaluation] = (
                (await s.execute(select(AlertEvaluation.counts).where(AlertEvaluation.run_id == uuid.UUID(run_id))))
                .scalars()
                .all()
            )
            stock_events = select(func.count()).select_from(Event).where(Event.type.like("stock.%"))
            assert (await s.execute(stock_events)).scalar_one() == 301
        assert evaluation["mode"] == "changed" and evaluation["subjects"] == 200
        assert evaluation["opened"] == evaluation["resolved"] == evaluation["escalated"] == 0
    finally:
        seller.delete()


async def test_the_evaluation_joins_by_hash_whatever_the_estimates(api, st, marketplace_sandbox):
    """The evaluation's statement over a freshly synced catalogue (no statistics yet for its rows): its joins
    compare a few rows per subject, not every subject with every product (the planner, taking each CTE for a
    row or two, chose nested loops: ~300 000 comparisons for 590 products, quadratic), and JIT never runs.
    Read from the statement's own EXPLAIN ANALYZE, run as ``apply`` runs it, inside a savepoint rolled back."""
    from app.domain.alerts.transitions import TRANSITIONS_FULL, fetch_judged, raw_connection
    from app.lib.ids import uuid7

    owner = await register(api)
    seller = make_seller(marketplace_sandbox, "wildberries", products=590, warehouses=2, seed=41)
    try:
        conn = await connect(api, owner["headers"], seller)
        tid = owner["tenant"]["id"]
        rule = {"units_below": 5, "days_of_cover_below": 3}  # a saved default rule that asks for cover too
        assert (await api.put("/api/v1/alert-rules/default", json=rule, headers=owner["headers"])).status_code == 200
        await sync_and_evaluate(st, tid, conn["id"])
        async with tenant_session(st, tid) as s:
            raw = await raw_connection(s)
            args = [uuid.UUID(str(tid)), uuid.UUID(conn["id"]), 5, datetime.now(UTC), [], [], uuid7()]
            tr = raw.transaction()  # a savepoint: the EXPLAIN ANALYZE really runs the statement
            await tr.start()
            try:
                [row] = await fetch_judged(raw, "EXPLAIN (ANALYZE, FORMAT JSON) " + TRANSITIONS_FULL, *args)
            finally:
                await tr.rollback()
        explained, nodes = explained_plan(row[0])
        subjects = max(n.get("Actual Rows", 0) for n in nodes if n.get("Node Type") == "CTE Scan")
        compared = join_filter_comparisons(nodes)
        assert subjects >= 590
        assert compared <= 2 * subjects, f"{compared} rows compared in join filters for {subjects} subjects"
        assert "JIT" not in explained
    finally:
        seller.delete()
