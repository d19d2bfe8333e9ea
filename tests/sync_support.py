"""Helpers for sync tests: sandbox sellers over the control API, connections, and running the worker."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from arq.worker import Worker
from sqlalchemy import select

from app.config import Settings
from app.db.models import OutboxMessage
from app.db.outbox import relay
from app.worker.settings import build_worker_settings
from tests.fakes import worker_context


class Seller:
    def __init__(self, base: str, data: dict[str, Any]) -> None:
        self.base = base
        self.id = data["id"]
        self.marketplace = data["marketplace"]
        self.credentials = data["credentials"]

    def _http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=60)

    def truth(self) -> list[dict[str, Any]]:
        with self._http() as h:
            r = h.get(f"/control/sellers/{self.id}/stocks")
            assert r.status_code == 200, r.text
            return r.json()["items"]

    def set_stocks(self, items: list[dict[str, Any]]) -> None:
        with self._http() as h:
            r = h.put(f"/control/sellers/{self.id}/stocks", json={"items": items})
            assert r.status_code == 200, r.text

    def faults(self, **faults: Any) -> None:
        with self._http() as h:
            r = h.put(f"/control/sellers/{self.id}/faults", json=faults)
            assert r.status_code == 200, r.text

    def summary(self) -> dict[str, Any]:
        with self._http() as h:
            return h.get(f"/control/sellers/{self.id}").json()

    def advance(self, hours: float) -> None:
        with self._http() as h:
            assert h.post(f"/control/sellers/{self.id}/advance", json={"hours": hours}).status_code == 200

    def delete(self) -> None:
        with self._http() as h:
            h.delete(f"/control/sellers/{self.id}")


def make_seller(
    base: str,
    marketplace: str = "wildberries",
    *,
    products: int = 40,
    warehouses: int = 2,
    seed: int = 7,
    rate_limits: str = "off",
    **extra: Any,
) -> Seller:
    with httpx.Client(base_url=base, timeout=60) as h:
        r = h.post(
            "/control/sellers",
            json={"marketplace": marketplace, "products": products, "warehouses": warehouses, "seed": seed, **extra},
        )
        assert r.status_code == 201, r.text
        seller = Seller(base, r.json())
    seller.faults(rate_limits=rate_limits)
    return seller


async def connect(client: Any, headers: dict[str, str], seller: Seller, name: str = "Shop") -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/connections",
        json={"marketplace": seller.marketplace, "name": name, "credentials": seller.credentials},
        headers=headers,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


async def run_worker(settings: Settings, **overrides: Any) -> None:
    """Run every queued job to completion in this process (arq burst mode), then stop."""
    kwargs = build_worker_settings(settings, serve_metrics=False)
    kwargs.update(burst=True, handle_signals=False, poll_delay=0.05, cron_jobs=[], **overrides)
    worker = Worker(**kwargs)
    try:
        await worker.main()
    finally:
        await worker.close()


async def relay_pending(settings: Settings, tenant_id: Any) -> int:
    """Enqueue the tenant's outbox rows not yet in arq (the API relays its own at once; a job outside a
    request, like the sweep called from a test without a queue, leaves them to the outbox sweep)."""
    async with worker_context(settings) as ctx:
        sm = ctx["sessionmaker"]
        async with sm() as s:
            stmt = select(OutboxMessage.id).where(
                OutboxMessage.enqueued_at.is_(None), OutboxMessage.tenant_id == uuid.UUID(str(tenant_id))
            )
            ids = list((await s.execute(stmt)).scalars().all())
        return await relay(sm, ctx["redis"], ids) if ids else 0


async def sync_now(client: Any, settings: Settings, headers: dict[str, str], connection_id: str) -> dict[str, Any]:
    """Trigger a manual sync over the API, let the worker run it, and return the finished run."""
    resp = await client.post(f"/api/v1/connections/{connection_id}/syncs", headers=headers)
    assert resp.status_code == 202, resp.text
    run_id = resp.json()["id"]
    await run_worker(settings)
    run = await client.get(f"/api/v1/syncs/{run_id}", headers=headers)
    assert run.status_code == 200, run.text
    return run.json()


async def _get(client: Any, url: str, **kwargs: Any) -> Any:
    """GET as a well-behaved client: a 429 is waited out (Retry-After) and retried."""
    while True:
        resp = await client.get(url, **kwargs)
        if resp.status_code != 429:
            assert resp.status_code == 200, resp.text
            return resp
        await asyncio.sleep(float(resp.headers["retry-after"]))


async def our_stock(client: Any, headers: dict[str, str], connection_id: str) -> dict[tuple[str, str, str], int]:
    """Every stock cell we hold, keyed by marketplace ids (product, variant, warehouse) like the truth."""
    out: dict[tuple[str, str, str], int] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500, "connection_id": connection_id}
        if cursor:
            params["cursor"] = cursor
        page = (await _get(client, "/api/v1/products", params=params, headers=headers)).json()
        for item in page["items"]:
            detail = (await _get(client, f"/api/v1/products/{item['id']}", headers=headers)).json()
            for v in detail["variants"]:
                for cell in v["stock"]:
                    out[(detail["external_id"], v["external_id"], cell["warehouse_external_id"])] = cell["quantity"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def truth_map(items: list[dict[str, Any]]) -> dict[tuple[str, str, str], int]:
    return {(i["product_id"], i["variant_id"], i["warehouse_id"]): int(i["quantity"]) for i in items}
