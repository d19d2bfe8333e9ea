"""Billing: Stripe webhook events accepted per second (verify + store + ack), and the time from a change at
Stripe to the plan applied here.

Everything over real HTTP on loopback: the API (`python -m app api`, one process) and the worker
(`python -m app worker`, production poll delay) as subprocesses against a scratch database; the sandbox's
Stripe stand-in (its own process) signs and delivers webhooks exactly as Stripe does.

1. Accepted per second: distinct signed events POSTed at a fixed concurrency to
   `POST /api/v1/billing/stripe/webhook`. Two kinds: an event billing reacts to (stored + its job in the
   outbox, relayed to the queue after commit) and one it only records (stored, marked ignored). Baseline in
   the same run: a bare endpoint served by the same uvicorn that only verifies the signature
   (`verify_webhook`, the same code) and answers — the floor under verify + store + ack.
2. Event to applied plan: a subscription's price changed at Stripe (the SDK, as the Customer Portal would);
   the stand-in delivers `customer.subscription.updated`; the API stores it; the worker's job re-reads the
   subscription and applies it. Timed from the change's answer to the plan showing in the database.
   Baseline in the same run: the same change followed at once by what the job does (re-read + apply) in
   this process — no delivery, no store, no queue hop.

    python -m bench.billing [--events 2000] [--concurrency 16] [--rounds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from bench._common import ROOT, bench_settings, report

KEY = "sk_test_bench_" + secrets.token_hex(8)
WHSEC = "whsec_bench_" + secrets.token_hex(12)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def env_of(settings: Any, **extra: str) -> dict[str, str]:
    from app.config import Settings

    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCK_TRACKER_")}
    for name in Settings.__struct_fields__:
        value = getattr(settings, name)
        env[f"STOCK_TRACKER_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    env.update(extra)
    return env


def free_port() -> int:
    from tests.fakes import free_port as port

    return port()


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str], ready: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        if ready:
            wait_ready(ready, proc)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def create_bare() -> Any:
    """The baseline endpoint: verify the signature (the app's own function) and answer; nothing stored."""
    from litestar import Litestar, Request, post

    from app.integrations.stripe import verify_webhook

    secret = os.environ["BENCH_WEBHOOK_SECRET"]

    @post("/api/v1/billing/stripe/webhook", status_code=200)
    async def receive(request: Request[Any, Any, Any]) -> dict[str, bool]:
        verify_webhook(await request.body(), request.headers.get("stripe-signature"), secret)
        return {"received": True, "duplicate": False}

    return Litestar([receive], openapi_config=None)


def event_body(kind: str) -> bytes:
    return json.dumps(
        {
            "id": "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()),
            "livemode": False,
            "type": kind,
            "data": {"object": {"id": "sub_" + secrets.token_hex(8), "object": "subscription", "customer": "cus_x"}},
        }
    ).encode()


async def accept_rate(base: str, kind: str, events: int, concurrency: int) -> dict[str, float]:
    """POST ``events`` distinct signed events, ``concurrency`` at a time (after a warm-up); accepted/s and
    latency."""
    import httpx

    from app.sandbox.stripe import signature_header

    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:

        async def run(bodies: list[bytes]) -> float:
            queue = list(reversed(bodies))

            async def one() -> None:
                while queue:
                    body = queue.pop()
                    headers = {
                        "Content-Type": "application/json; charset=utf-8",
                        "Stripe-Signature": signature_header(WHSEC, body, int(time.time())),
                    }
                    started = time.perf_counter()
                    resp = await http.post("/api/v1/billing/stripe/webhook", content=body, headers=headers)
                    latencies.append(time.perf_counter() - started)
                    assert resp.status_code == 200, resp.text

            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(concurrency)))
            return time.perf_counter() - started

        await run([event_body(kind) for _ in range(min(200, events))])  # connections, pools, caches
        latencies.clear()
        elapsed = await run([event_body(kind) for _ in range(events)])
    return {
        "per_s": round(events / elapsed, 1),
        "p50_ms": round(pct(latencies, 0.5) * 1000, 2),
        "p95_ms": round(pct(latencies, 0.95) * 1000, 2),
    }


async def event_to_plan(settings: Any, api: str, sandbox: str, rounds: int, tenants: int) -> dict[str, Any]:
    import asyncpg
    import httpx

    from app.db.engine import create_engine, create_sessionmaker, session_scope
    from app.domain.billing.plans import purchasable_plans
    from app.domain.billing.services._state import apply, locked_account, observe_customer
    from app.integrations.stripe import CatalogEntry, StripeGateway
    from tests.conftest import _asyncpg_kwargs
    from tests.sandbox_server import StripeStandIn

    async with httpx.AsyncClient(timeout=60) as http, httpx.AsyncClient(base_url=api, timeout=60) as client:
        standin = await StripeStandIn.create(
            http, sandbox, secret_key=KEY, webhook_url=f"{api}/api/v1/billing/stripe/webhook", webhook_secret=WHSEC
        )
        stripe = StripeGateway.from_settings(settings)
        await stripe.sync_catalog([CatalogEntry(p.code, p.name, p.price_usd_cents) for p in purchasable_plans()])
        prices = {code: (await stripe.price_for_plan(code)).id for code in ("starter", "pro")}
        db = await asyncpg.connect(**_asyncpg_kwargs(settings.migration_database_url))
        subs: list[tuple[uuid.UUID, str, str]] = []  # tenant, customer, subscription
        for n in range(tenants):
            reg = await client.post(
                "/api/v1/auth/register",
                json={
                    "email": f"bench-{n}-{secrets.token_hex(4)}@example.com",
                    "password": "correct horse battery",
                    "organization_name": f"Bench {n}",
                },
            )
            headers = {"Authorization": f"Bearer {reg.json()['tokens']['access_token']}"}
            url = (await client.post("/api/v1/billing/checkout", json={"plan": "starter"}, headers=headers)).json()[
                "url"
            ]
            done = await standin.complete_checkout(url.rsplit("/", 1)[-1])
            subs.append((uuid.UUID(reg.json()["tenant"]["id"]), done["customer"], done["subscription"]))
        await standin.flush()

        async def wait_plan(tenant: uuid.UUID, plan: str, timeout: float = 30) -> None:
            deadline = time.perf_counter() + timeout
            while time.perf_counter() < deadline:
                if await db.fetchval("SELECT plan FROM billing_accounts WHERE tenant_id = $1", tenant) == plan:
                    return
                await asyncio.sleep(0.002)
            raise RuntimeError("the plan was not applied")

        for tenant, _, _ in subs:
            await wait_plan(tenant, "starter", 60)
        current = dict.fromkeys((s[2] for s in subs), "starter")
        pipeline: list[float] = []
        for i in range(rounds):
            tenant, _, sub = subs[i % len(subs)]
            target = "pro" if current[sub] == "starter" else "starter"
            await stripe.change_price_now(sub, prices[target])
            started = time.perf_counter()
            await wait_plan(tenant, target)
            pipeline.append(time.perf_counter() - started)
            current[sub] = target
        await standin.flush()
        await asyncio.sleep(1)  # let the last jobs finish before the baseline changes the same rows
        # Baseline: the same change, then at once what the job does (re-read, apply) in this process.
        engine = create_engine(settings, pool_size=2, max_overflow=0)
        sessionmaker = create_sessionmaker(engine)
        inline: list[float] = []
        await standin.set_delivery("manual")  # the webhooks must not race the baseline
        for i in range(rounds):
            tenant, customer, sub = subs[i % len(subs)]
            target = "pro" if current[sub] == "starter" else "starter"
            await stripe.change_price_now(sub, prices[target])
            started = time.perf_counter()
            async with session_scope(sessionmaker, tenant) as s:
                account = await locked_account(s, tenant)
                seen = await observe_customer(stripe, customer)
                assert seen is not None
                await apply(s, tenant, account, seen)
            inline.append(time.perf_counter() - started)
            current[sub] = target
        await engine.dispose()
        await db.close()
        await stripe.aclose()
        await standin.delete()
    return {
        "event_to_plan_p50_ms": round(pct(pipeline, 0.5) * 1000, 1),
        "event_to_plan_p95_ms": round(pct(pipeline, 0.95) * 1000, 1),
        "event_to_plan_mean_ms": round(statistics.mean(pipeline) * 1000, 1),
        "baseline_reread_apply_p50_ms": round(pct(inline, 0.5) * 1000, 1),
        "baseline_reread_apply_p95_ms": round(pct(inline, 0.95) * 1000, 1),
    }


async def main(events: int, concurrency: int, rounds: int, tenants: int) -> None:
    from tests.sandbox_server import run_sandbox

    with run_sandbox() as sandbox_base:
        async with bench_settings(
            stripe_secret_key=KEY,
            stripe_webhook_secret=WHSEC,
            stripe_api_base=f"{sandbox_base}/sandbox/stripe",
            worker_crons=False,
            rate_limit_enabled=False,
        ) as settings:
            port = free_port()
            api = f"http://127.0.0.1:{port}"
            env = env_of(settings, STOCK_TRACKER_WORKER_METRICS_PORT=str(free_port()))
            api_cmd = [sys.executable, "-m", "app", "api", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
            bare_port = free_port()
            bare_cmd = [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.billing:create_bare",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(bare_port),
                "--no-access-log",
                "--no-server-header",
                "--log-level",
                "warning",
            ]
            figures: dict[str, Any] = {"events": events, "concurrency": concurrency}
            with process(api_cmd, env, f"{api}/health/live"):
                with process(bare_cmd, {**env, "BENCH_WEBHOOK_SECRET": WHSEC}, f"http://127.0.0.1:{bare_port}/x"):
                    bare = await accept_rate(
                        f"http://127.0.0.1:{bare_port}", "customer.subscription.updated", events, concurrency
                    )
                ignored = await accept_rate(api, "product.created", events, concurrency)
                handled = await accept_rate(api, "customer.subscription.updated", events, concurrency)
                figures.update(
                    {
                        "baseline_verify_only_per_s": bare["per_s"],
                        "baseline_verify_only_p95_ms": bare["p95_ms"],
                        "stored_ignored_per_s": ignored["per_s"],
                        "stored_ignored_p95_ms": ignored["p95_ms"],
                        "stored_and_queued_per_s": handled["per_s"],
                        "stored_and_queued_p50_ms": handled["p50_ms"],
                        "stored_and_queued_p95_ms": handled["p95_ms"],
                    }
                )
                # The handled events above name no real customer: drop their jobs before the worker starts.
                from redis.asyncio import Redis

                redis = Redis.from_url(settings.redis_url)
                await redis.delete(settings.queue_name)
                await redis.aclose()
                with process([sys.executable, "-m", "app", "worker"], env):
                    figures.update(await event_to_plan(settings, api, f"{sandbox_base}", rounds, tenants))
            figures["worker_poll_delay_s"] = settings.worker_poll_delay
    report("billing", figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--tenants", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.concurrency, args.rounds, args.tenants))
