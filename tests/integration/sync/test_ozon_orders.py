"""The Ozon orders step of the sync: every FBO and FBS posting unit becomes exactly one stored order line, with
the posting's cancellation flag and Ozon's own warehouse id — and a second sync adds or rewrites nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from sqlalchemy import text

from app.integrations.marketplace import Retry
from app.integrations.ozon import OzonClient
from tests.fakes import sync_and_evaluate, tenant_session
from tests.helpers import register
from tests.sync_support import connect, make_seller, sync_now

MSK = timezone(timedelta(hours=3))


async def expected_lines(base: str, credentials: dict[str, str], since: datetime, to: datetime) -> dict[str, Any]:
    """What the marketplace says, read straight from its posting lists: line id → (cancelled, warehouse id)."""
    async with httpx.AsyncClient(timeout=60) as http:
        client = OzonClient(
            credentials["client_id"], credentials["api_key"], base_url=f"{base}/ozon", http=http, limiter=None,
            limiter_key="ozon:test", retry=Retry(attempts=2, base=0.01, cap=0.01),
        )  # fmt: skip
        out: dict[str, Any] = {}
        async for page in client.fbo_postings(since, to):
            for p in page:
                for item in p.products:
                    for n in range(item.quantity):
                        wid = p.analytics_data.warehouse_id if p.analytics_data else None
                        out[f"{p.posting_number}:{item.sku}:{n + 1}"] = (p.cancelled, str(wid))
        async for fbs in client.fbs_postings(since, to):
            for q in fbs:
                for item in q.products:
                    for n in range(item.quantity):
                        wid = q.delivery_method.warehouse_id if q.delivery_method else None
                        out[f"{q.posting_number}:{item.sku}:{n + 1}"] = (q.cancelled, str(wid))
        return out


async def stored_lines(settings: Any, tenant: str) -> dict[str, Any]:
    async with tenant_session(settings, tenant) as s:
        rows = await s.execute(
            text(
                "SELECT o.external_id, o.is_cancel, w.external_id AS warehouse, o.product_id, o.variant_id "
                "FROM order_lines o LEFT JOIN warehouses w ON w.id = o.warehouse_id"
            )
        )
        return {r.external_id: r for r in rows}


async def test_postings_become_one_line_per_unit_once(client, settings, marketplace_sandbox):
    owner = await register(client)
    seller = make_seller(marketplace_sandbox, "ozon", products=15, warehouses=2, seed=71)
    try:
        started = datetime.now(UTC)
        conn = await connect(client, owner["headers"], seller)
        run = await sync_now(client, settings, owner["headers"], conn["id"])
        assert run["status"] == "succeeded", run
        floor = (started.astimezone(MSK) - timedelta(days=30)).replace(hour=0, minute=0, second=0, microsecond=0)
        expected = await expected_lines(marketplace_sandbox, seller.credentials, floor, started)
        stored = await stored_lines(settings, owner["tenant"]["id"])
        assert expected and set(stored) == set(expected)
        assert {k: (r.is_cancel, r.warehouse) for k, r in stored.items()} == expected
        assert any(cancelled for cancelled, _ in expected.values())
        assert all(r.product_id is not None and r.variant_id is not None for r in stored.values())
        assert run["stages"]["orders"]["counts"]["orders"] == len(expected)
        # Warehouses by Ozon's id (rule 4): no name-keyed warehouse was made for order lines.
        async with tenant_session(settings, owner["tenant"]["id"]) as s:
            keys = (await s.execute(text("SELECT external_id FROM warehouses"))).scalars().all()
        assert keys and not any(k.startswith("name:") for k in keys)
        # A second sync re-reads the last days of postings and rewrites nothing.
        run_id = await sync_and_evaluate(settings, owner["tenant"]["id"], conn["id"])
        again = (await client.get(f"/api/v1/syncs/{run_id}", headers=owner["headers"])).json()
        assert again["status"] == "succeeded" and again["stages"]["write_orders"]["counts"]["orders_written"] == 0
        assert set(await stored_lines(settings, owner["tenant"]["id"])) == set(expected)
    finally:
        seller.delete()
