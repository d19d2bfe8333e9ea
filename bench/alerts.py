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

Alert evaluation (issue 13 §2), the set-based statement against the per-product Python evaluation it
replaced (``bench/baselines/alerts_python.py``), in the same run on twin tenants holding identical catalogues
and stock (one webhook endpoint and one Telegram chat each, so publishing writes deliveries and
notifications): a first sync of 1 000 products of which a fifth are low or out; a resync of 1 000 products
that changed 10; a 5 000-product sync with 300 transitions; and, set-based only, 50 000 products (a first
evaluation with 2 000 out, then a resync that changed 10). The set-based side runs twice where it matters:
as it ships (the first sync is silent: one digest) and with the flood cap lifted (every event one by one).

    python bench/alerts.py [--rounds 60] [--endpoints 1000] [--only-evaluation] [--eval-rounds 3]
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


async def _twin_tenants(owner: Any, products: int, count: int = 2) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """``count`` tenants with the same catalogue (products × one variant, one warehouse), a webhook endpoint and a
    linked Telegram chat each; every product at 40 units. (tenant, connection) pairs."""
    out = []
    for _ in range(count):
        t = uuid.uuid4()
        await owner.execute(
            "INSERT INTO tenants (id, name, plan, timezone) VALUES ($1, 'bench', 'self_hosted', 'Europe/Moscow')", t
        )
        await owner.execute(
            "INSERT INTO connections (id, tenant_id, marketplace, name, credentials_encrypted, status) "
            "VALUES ($1, $1, 'wildberries', 'bench', '', 'active')",
            t,
        )
        await owner.execute(
            "INSERT INTO warehouses (id, tenant_id, connection_id, external_id, name, kind) "
            "VALUES ($1, $1, $1, 'w', 'Склад', 'fbs')",
            t,
        )
        await owner.execute(
            "INSERT INTO products (id, tenant_id, connection_id, marketplace, external_id, vendor_code, title) "
            "SELECT gen_random_uuid(), $1, $1, 'wildberries', n::text, 'v' || n, 'Product ' || n "
            "FROM generate_series(1, $2) n",
            t,
            products,
        )
        await owner.execute(
            "INSERT INTO variants (id, tenant_id, connection_id, product_id, external_id) "
            "SELECT gen_random_uuid(), tenant_id, connection_id, id, external_id FROM products WHERE tenant_id = $1",
            t,
        )
        await owner.execute(
            "INSERT INTO stock_levels (tenant_id, variant_id, warehouse_id, connection_id, product_id, quantity) "
            "SELECT tenant_id, id, connection_id, connection_id, product_id, 40 FROM variants WHERE tenant_id = $1",
            t,
        )
        await owner.execute(
            "INSERT INTO webhook_endpoints (id, tenant_id, url, secret_encrypted) "
            "VALUES (gen_random_uuid(), $1, 'https://example.invalid/hook', '')",
            t,
        )
        await owner.execute(
            "INSERT INTO notification_channels (id, tenant_id, kind, chat_id) "
            "VALUES (gen_random_uuid(), $1, 'telegram', (random() * 1e9)::bigint)",
            t,
        )
        out.append((t, t))
    return out


async def _sync_run(owner: Any, tenant: uuid.UUID, changes: dict[str, int]) -> uuid.UUID:
    """What a sync commits, written directly: the run (succeeded), the changed stock rows and their history
    points (the set-based evaluation finds the changed products through them)."""
    run = uuid.uuid4()
    await owner.execute(
        "INSERT INTO sync_runs (id, tenant_id, connection_id, trigger, status, counts, stages) "
        "VALUES ($1, $2, $2, 'scheduled', 'succeeded', '{}', '{}')",
        run,
        tenant,
    )
    await owner.execute(
        """WITH ch AS (SELECT * FROM unnest($3::text[], $4::int[]) c(ext, qty)),
                up AS (UPDATE stock_levels s SET quantity = ch.qty, changed_at = now()
                       FROM ch, products p
                       WHERE p.tenant_id = $1 AND p.external_id = ch.ext AND s.product_id = p.id
                       RETURNING s.*)
           INSERT INTO stock_history (tenant_id, variant_id, warehouse_id, product_id, sync_run_id, at, quantity)
           SELECT tenant_id, variant_id, warehouse_id, product_id, $2, now(), quantity FROM up""",
        tenant,
        run,
        list(changes),
        list(changes.values()),
    )
    return run


async def evaluation(settings: Any, rounds: int) -> dict[str, Any]:
    """Old (per-product Python) and new (set-based) evaluation on twin tenants, same changes, same run."""
    import asyncpg

    from app.db.engine import create_engine, create_sessionmaker, session_scope
    from app.db.models.notifications import AlertRule
    from app.domain.alerts.evaluation import AlertEvaluator
    from bench.baselines.alerts_python import AlertEvaluator as PythonEvaluator
    from tests.conftest import _asyncpg_kwargs

    engine = create_engine(settings)
    sm = create_sessionmaker(engine)
    owner = await asyncpg.connect(**_asyncpg_kwargs(settings.migration_database_url))
    out: dict[str, Any] = {}

    async def evaluate(kind: str, tenant: uuid.UUID, run: uuid.UUID) -> tuple[float, Any]:
        t0 = time.perf_counter()
        async with session_scope(sm, tenant) as s:
            if kind == "python":
                outcome = await PythonEvaluator(s, tenant, 5).evaluate(tenant, run)
            else:
                outcome = await AlertEvaluator(s, tenant, 5).evaluate(tenant, run)
        return time.perf_counter() - t0, outcome

    async def lift_cap(tenant: uuid.UUID) -> None:
        async with session_scope(sm, tenant) as s:
            s.add(
                AlertRule(
                    id=uuid.uuid4(), tenant_id=tenant, product_id=None, units_below=5, max_alerts_per_sync=100_000
                )
            )

    try:
        scenarios: dict[str, dict[str, list[float]]] = {}
        events: dict[str, int] = {}
        for _ in range(rounds):
            # First sync of 1 000 products, a fifth low or out: the baseline. Python: an event per alert;
            # set-based as shipped: silent, one digest; set-based with the cap lifted: every event, batched.
            triple = await _twin_tenants(owner, 1000, count=3)
            low = {str(i): (0 if i % 10 == 0 else 3) for i in range(1, 1001) if i % 5 == 0}
            await lift_cap(triple[2][0])
            for (tenant, _), kind, label in zip(
                triple, ("python", "set", "set"), ("python", "set_silent", "set_every_event"), strict=True
            ):
                run = await _sync_run(owner, tenant, low)
                if kind == "set" and label == "set_every_event":
                    # Not the baseline: an evaluation happened before (as on any later sync).
                    await owner.execute(
                        "INSERT INTO alert_evaluations (run_id, tenant_id, connection_id, counts) "
                        "VALUES (gen_random_uuid(), $1, $1, '{}')",
                        tenant,
                    )
                seconds, outcome = await evaluate(kind, tenant, run)
                scenarios.setdefault("first_sync_1000_products_200_alerts", {}).setdefault(label, []).append(seconds)
                events[f"first_sync_{label}_events"] = len(outcome.events)
            # A resync of the same 1 000 that changed 10 products (5 of them now low).
            pair = triple[:2]
            change = {str(i): (2 if i % 2 else 35) for i in range(401, 411)}
            for (tenant, _), kind in zip(pair, ("python", "set"), strict=True):
                run = await _sync_run(owner, tenant, change)
                seconds, _ = await evaluate(kind, tenant, run)
                scenarios.setdefault("resync_1000_products_10_changed", {}).setdefault(kind, []).append(seconds)
            # 5 000 products, 300 transitions (100 restored, 150 low, 50 out) after a baseline with 100 out.
            big = await _twin_tenants(owner, 5000)
            for tenant, _ in big:
                await lift_cap(tenant)
            for (tenant, _), kind in zip(big, ("python", "set"), strict=True):
                await evaluate(kind, tenant, await _sync_run(owner, tenant, {str(i): 0 for i in range(1, 101)}))
                moves = {
                    **{str(i): 40 for i in range(1, 101)},
                    **{str(i): 2 for i in range(101, 251)},
                    **{str(i): 0 for i in range(251, 301)},
                }
                run = await _sync_run(owner, tenant, moves)
                seconds, outcome = await evaluate(kind, tenant, run)
                assert outcome.opened + outcome.resolved + outcome.escalated == 300, outcome.counts()
                scenarios.setdefault("sync_5000_products_300_transitions", {}).setdefault(kind, []).append(seconds)
        # A large catalogue (set-based only: the per-product Python evaluation would take minutes): the first
        # evaluation of 50 000 products with 2 000 out (the baseline, silent), then a resync that changed 10 —
        # the changed-products path, where the statement's hash joins read the connection's whole stock
        # instead of looking up the 10 (the price of never comparing every subject with every product).
        [(large, _)] = await _twin_tenants(owner, 50_000, count=1)
        for _ in range(rounds):
            out_now = {str(i): 0 for i in range(1, 2001)}
            seconds, _ = await evaluate("set", large, await _sync_run(owner, large, out_now))
            scenarios.setdefault("sync_50000_products_2000_out", {}).setdefault("set", []).append(seconds)
            change = {str(i): (2 if i % 2 else 35) for i in range(40_001, 40_011)}
            seconds, _ = await evaluate("set", large, await _sync_run(owner, large, change))
            scenarios.setdefault("resync_50000_products_10_changed", {}).setdefault("set", []).append(seconds)
            await owner.execute("DELETE FROM alerts WHERE tenant_id = $1", large)  # the next round starts over
            await owner.execute("DELETE FROM alert_evaluations WHERE tenant_id = $1", large)
            await owner.execute("UPDATE stock_levels SET quantity = 40 WHERE tenant_id = $1", large)
        for name, by_kind in scenarios.items():
            base = statistics.median(by_kind["python"]) if "python" in by_kind else None
            for kind, values in by_kind.items():
                out[f"eval_{name}_{kind}_ms"] = round(statistics.median(values) * 1000, 1)
                if kind != "python" and base is not None:
                    out[f"eval_{name}_{kind}_speedup"] = round(base / statistics.median(values), 1)
        out.update(events)
        out["eval_rounds"] = rounds
        return out
    finally:
        await owner.close()
        await engine.dispose()


async def main(rounds: int, endpoints: int, only_evaluation: bool, eval_rounds: int) -> None:
    import httpx
    from litestar.testing import AsyncTestClient

    from app.server.app import create_app
    from tests.sandbox_server import serve_sandbox

    if only_evaluation:
        async with bench_settings() as settings:
            figures = await evaluation(settings, eval_rounds)
        report("alerts_evaluation", {**figures, "peak_rss_mb": round(peak_rss_mb(), 1)})
        return
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
            evaluated = await evaluation(settings, eval_rounds)
    report("alerts", {**latency, **fan_out, **evaluated, "peak_rss_mb": round(peak_rss_mb(), 1)})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--only-evaluation", action="store_true", help="only the evaluation's old/new figures")
    parser.add_argument("--eval-rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.endpoints, args.only_evaluation, args.eval_rounds))
