"""Alert delivery: time from a sync's commit to the webhook's receipt (p50/p95), and deliveries per second
to 1 000 endpoints through the worker.

Everything runs over real HTTP on loopback: a webhook receiver in its own process (``tests.fakes.receiver``)
records arrival times; an arq worker runs in this process with the production settings (max_jobs,
poll_delay). A sandbox seller is synced once for a real catalogue; each latency round then commits what the
sync engine commits at the end of a run — the stock rows, the finished run and the ``alerts.evaluate``
outbox job — and relays it after commit, as the engine does.

Baselines in the same run: for latency, one signed POST straight to the receiver (the floor under the
pipeline); for throughput, the same 1 000 deliveries made naively one at a time by the same code (claim,
sign, send, record — no batching, no concurrency), and, as a floor, the bare signed POSTs in a loop with
no bookkeeping at all.

    python bench/alerts.py [--rounds 60] [--endpoints 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

from bench._common import ROOT, bench_settings, peak_rss_mb, report

STOCK_EVENTS = ["stock.low", "stock.out", "stock.restored"]
PER_TENANT = 100  # the self-hosted plan's endpoint limit


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class ReceiverProcess:
    def __init__(self) -> None:
        from tests.fakes import free_port

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ReceiverProcess:
        import httpx

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.receiver", "--port", str(self.port)], cwd=str(ROOT)
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.base}/_stats", timeout=0.5)
                return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the receiver did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    async def stats(self, http: Any) -> dict[str, Any]:
        return (await http.get(f"{self.base}/_stats")).json()  # type: ignore[no-any-return]

    async def wait_count(self, http: Any, count: int, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            stats = await self.stats(http)
            if stats["count"] >= count or time.monotonic() > deadline:
                return stats
            await asyncio.sleep(0.005)


async def start_worker(settings: Any) -> tuple[Any, asyncio.Task[Any]]:
    from arq.worker import Worker

    from app.worker.settings import build_worker_settings

    kwargs = build_worker_settings(settings, serve_metrics=False)
    kwargs.update(handle_signals=False, cron_jobs=[])
    worker = Worker(**kwargs)
    return worker, asyncio.create_task(worker.main())


async def stop_worker(worker: Any, task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    await worker.close()


async def latency_rounds(
    settings: Any, client: Any, receiver: ReceiverProcess, http: Any, rounds: int
) -> dict[str, Any]:
    from sqlalchemy import select, update

    from app.db.engine import create_engine, create_sessionmaker, session_scope
    from app.db.models import StockLevel, SyncRun, SyncStatus
    from app.db.outbox import add_job, relay, take_pending
    from app.domain.webhooks import signing
    from app.lib.ids import uuid7
    from app.lib.redis import arq_client
    from tests.helpers import register
    from tests.sync_support import connect, make_seller, sync_now

    owner = await register(client, "Bench latency")
    tid = uuid.UUID(owner["tenant"]["id"])
    seller = make_seller(settings.wb_base_url.rsplit("/wb", 1)[0], "wildberries", products=50, warehouses=2, seed=5)
    conn = await connect(client, owner["headers"], seller)
    endpoint = await client.post(
        "/api/v1/webhook-endpoints",
        json={"url": f"{receiver.base}/latency", "event_types": STOCK_EVENTS},
        headers=owner["headers"],
    )
    assert endpoint.status_code == 201, endpoint.text
    secret = endpoint.json()["secret"]
    seller.set_stocks([{**i, "quantity": 100} for i in seller.truth()])  # nothing low: no stray alerts
    run = await sync_now(client, settings, owner["headers"], conn["id"])  # a real sync: catalogue and stock rows
    assert run["status"] in ("succeeded", "partially_failed"), run
    worker, task = await start_worker(settings)
    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    queue = arq_client(settings.redis_url, settings.queue_name)
    try:
        async with session_scope(sm, tid) as s:
            await s.execute(update(StockLevel).values(quantity=100))
            product = (await s.execute(select(StockLevel.product_id).limit(1))).scalar_one()
        # Let anything the real sync enqueued settle before measuring.
        await asyncio.sleep(1.0)
        base = (await receiver.stats(http))["count"]
        latencies: list[float] = []
        for i in range(rounds):
            quantity = 2 if i % 2 == 0 else 50  # low, then restored: one webhook per round
            async with session_scope(sm, tid) as s:
                run_id = uuid7()
                s.add(
                    SyncRun(
                        id=run_id,
                        connection_id=uuid.UUID(conn["id"]),
                        trigger="scheduled",
                        status=SyncStatus.SUCCEEDED,
                        counts={},
                        stages={},
                        tenant_id=tid,
                    )
                )
                await s.execute(update(StockLevel).where(StockLevel.product_id == product).values(quantity=0))
                first = (
                    await s.execute(
                        select(StockLevel.variant_id, StockLevel.warehouse_id)
                        .where(StockLevel.product_id == product)
                        .limit(1)
                    )
                ).one()
                await s.execute(
                    update(StockLevel)
                    .where(StockLevel.variant_id == first[0], StockLevel.warehouse_id == first[1])
                    .values(quantity=quantity)
                )
                add_job(
                    s,
                    "alerts.evaluate",
                    f"alerts:{run_id}",
                    tenant_id=tid,
                    connection_id=conn["id"],
                    run_id=str(run_id),
                )
            committed = time.time()
            await relay(sm, queue, take_pending(s))
            stats = await receiver.wait_count(http, base + i + 1)
            latencies.append(stats["items"][-1][2] - committed)
        # The floor: one signed POST from here straight to the receiver.
        floor: list[float] = []
        body = b'{"id":"x","type":"stock.low","data":{}}'
        for _ in range(rounds):
            t0 = time.time()
            await http.post(
                f"{receiver.base}/floor", content=body, headers=signing.headers([secret], "x", int(t0), body)
            )
            floor.append(time.time() - t0)
        return {
            "rounds": rounds,
            "commit_to_receipt_p50_ms": round(statistics.median(latencies) * 1000, 1),
            "commit_to_receipt_p95_ms": round(pct(latencies, 0.95) * 1000, 1),
            "commit_to_receipt_max_ms": round(max(latencies) * 1000, 1),
            "baseline_direct_post_p50_ms": round(statistics.median(floor) * 1000, 2),
            "baseline_direct_post_p95_ms": round(pct(floor, 0.95) * 1000, 2),
        }
    finally:
        seller.delete()
        await stop_worker(worker, task)
        await queue.aclose()
        await engine.dispose()


async def throughput(
    settings: Any, client: Any, receiver: ReceiverProcess, http: Any, endpoints: int
) -> dict[str, Any]:
    from sqlalchemy import func, select

    from app.db.engine import create_engine, create_sessionmaker, session_scope
    from app.db.models.notifications import WebhookDelivery, WebhookEndpoint
    from app.db.outbox import relay, take_pending
    from app.domain.events.services import publish_event
    from app.domain.webhooks import signing
    from app.domain.webhooks.dispatch import payload
    from app.lib.crypto import CredentialCipher
    from app.lib.ids import uuid7
    from app.lib.redis import arq_client
    from tests.helpers import register

    cipher = CredentialCipher(settings.encryption_key_list)
    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    queue = arq_client(settings.redis_url, settings.queue_name)
    tenants: list[uuid.UUID] = []
    secrets: dict[str, str] = {}
    for n in range((endpoints + PER_TENANT - 1) // PER_TENANT):
        owner = await register(client, f"Bench fan-out {n}")
        tid = uuid.UUID(owner["tenant"]["id"])
        tenants.append(tid)
        async with session_scope(sm, tid) as s:
            for i in range(min(PER_TENANT, endpoints - n * PER_TENANT)):
                secret = signing.new_secret()
                path = f"/fan/{n}/{i}"
                secrets[path] = secret
                s.add(
                    WebhookEndpoint(
                        id=uuid7(),
                        tenant_id=tid,
                        url=f"{receiver.base}{path}",
                        event_types=[],
                        secret_encrypted=cipher.encrypt(secret.encode()),
                    )
                )
    base = (await receiver.stats(http))["count"]
    worker, task = await start_worker(settings)
    events = []
    try:
        await asyncio.sleep(0.5)  # the worker is up and polling
        started = time.time()
        for tid in tenants:
            async with session_scope(sm, tid) as s:
                published = await publish_event(
                    s, tid, "stock.low", {"bench": True, "quantity": 1}, key=f"bench:{uuid.uuid4()}"
                )
                assert published is not None
                events.append((tid, published.id))
            await relay(sm, queue, take_pending(s))
        stats = await receiver.wait_count(http, base + endpoints, timeout=600)
        arrivals = sorted(at for path, _, at in stats["items"] if path.startswith("/fan/"))
        elapsed = arrivals[-1] - started
        ok = 0
        for tid in tenants:
            async with session_scope(sm, tid) as s:
                ok += (
                    await s.execute(
                        select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.status == "succeeded")
                    )
                ).scalar_one()
    finally:
        await stop_worker(worker, task)
    # Baseline 1 — the naive delivery loop: the same 1 000 deliveries (a second event per organization), each
    # claimed, signed, sent and recorded one at a time by the same code, without batching or concurrency.
    from app.domain.webhooks.dispatch import Deliverer
    from tests.fakes import worker_context

    second: list[tuple[uuid.UUID, uuid.UUID]] = []
    for tid in tenants:
        async with session_scope(sm, tid) as s:
            published = await publish_event(s, tid, "stock.low", {"bench": "naive"}, key=f"bench:{uuid.uuid4()}")
            assert published is not None
            second += [(tid, d) for d in published.deliveries]
    async with worker_context(settings) as ctx:
        t0 = time.time()
        for tid, delivery_id in second:
            await Deliverer(ctx).deliver(tid, delivery_id)
        naive = time.time() - t0
    # Baseline 2 — the floor: the same signed POSTs from a bare loop (no claim, no log, no retries).
    from app.db.models.notifications import Event

    bodies: list[tuple[str, bytes, str]] = []
    for tid, event_id in events:
        async with session_scope(sm, tid) as s:
            event = (await s.execute(select(Event).where(Event.id == event_id))).scalar_one()
            for url in (await s.execute(select(WebhookEndpoint.url))).scalars():
                bodies.append((url.replace("/fan/", "/bare/"), payload(event), str(event.id)))
    t0 = time.time()
    for url, body, msg_id in bodies:
        path = url[len(receiver.base) :].replace("/bare/", "/fan/")
        await http.post(url, content=body, headers=signing.headers([secrets[path]], msg_id, int(time.time()), body))
    bare = time.time() - t0
    await queue.aclose()
    await engine.dispose()
    return {
        "endpoints": endpoints,
        "deliveries_succeeded": ok,
        "pipeline_wall_s": round(elapsed, 3),
        "pipeline_deliveries_per_s": round(endpoints / elapsed, 1),
        "pipeline_first_receipt_ms": round((arrivals[0] - started) * 1000, 1),
        "baseline_one_at_a_time_wall_s": round(naive, 3),
        "baseline_one_at_a_time_deliveries_per_s": round(len(second) / naive, 1),
        "speedup_vs_one_at_a_time": round((naive / len(second)) / (elapsed / endpoints), 2),
        "floor_bare_post_loop_deliveries_per_s": round(len(bodies) / bare, 1),
        "worker_max_jobs": settings.worker_max_jobs,
        "worker_poll_delay_s": settings.worker_poll_delay,
    }


async def main(rounds: int, endpoints: int) -> None:
    import httpx
    from litestar.testing import AsyncTestClient

    from app.server.app import create_app
    from tests.sandbox_server import serve_sandbox

    with serve_sandbox() as sandbox, ReceiverProcess() as receiver:
        async with (
            bench_settings(
                wb_base_url=f"{sandbox}/wb",
                ozon_base_url=f"{sandbox}/ozon",
                webhook_allowed_networks="127.0.0.0/8",
                rate_limit_enabled=False,
            ) as settings,
            httpx.AsyncClient(timeout=30) as http,
            AsyncTestClient(app=create_app(settings), base_url="http://bench.local") as client,
        ):
            latency = await latency_rounds(settings, client, receiver, http, rounds)
            fan_out = await throughput(settings, client, receiver, http, endpoints)
    report("alerts", {**latency, **fan_out, "peak_rss_mb": round(peak_rss_mb(), 1)})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--endpoints", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.endpoints))
