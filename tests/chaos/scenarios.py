"""The fault-injection scenarios of issue 14 §6, sized by their caller: `tests/chaos/` runs them scaled down
(inside `make test`), `bench/chaos.py` full size. Each returns its figures; the tests assert on them and the
benchmark prints them. What each proves is written up in `docs/reliability.md`.

Everything goes through the real processes of a ``Cluster``: requests over HTTP to the API process, jobs on
the worker process, faults injected by stopping or signalling the servers and processes themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from redis.asyncio import Redis

from tests.chaos.cluster import Cluster
from tests.helpers import PASSWORD, register
from tests.sync_support import Seller, make_seller

STOCK_EVENTS = ["stock.low", "stock.out", "stock.restored", "stock.digest"]
ENDED = ("succeeded", "partially_failed", "failed")
# The contract the sync lifecycle of issue 14 §1 gives: a lock is a lease of at most this long
# (`STOCK_TRACKER_SYNC_LEASE_S`, 30 by default, at most 60); a scenario reads the deployment's own.
LEASE_S = 60.0


# --- a client's view -----------------------------------------------------------------------------------
@dataclass
class Sample:
    kind: str
    start: float  # monotonic
    end: float
    status: int | None  # None: no HTTP answer at all (refused, reset, timed out)
    code: str | None = None
    retry_after: str | None = None
    error: str | None = None
    sent: float | None = None  # when the request's last byte was written (monotonic)

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 400


async def timed(http: httpx.AsyncClient, kind: str, method: str, url: str, **kwargs: Any) -> Sample:
    start = time.monotonic()
    sent: list[float] = []

    async def trace(event: str, info: dict[str, Any]) -> None:
        if event == "http11.send_request_body.complete":
            sent.append(time.monotonic())

    try:
        resp = await http.request(method, url, extensions={"trace": trace}, **kwargs)
    except httpx.HTTPError as exc:
        return Sample(kind, start, time.monotonic(), None, error=type(exc).__name__, sent=sent[-1] if sent else None)
    code = None
    if resp.headers.get("content-type", "").startswith("application/problem+json"):
        with contextlib.suppress(ValueError):
            code = resp.json().get("code")
    return Sample(kind, start, time.monotonic(), resp.status_code, code, resp.headers.get("retry-after"), sent=sent[-1])


def p50_ms(samples: list[Sample]) -> float | None:
    times = sorted(s.end - s.start for s in samples)
    return round(times[len(times) // 2] * 1000, 1) if times else None


def rate(samples: list[Sample], start: float, end: float) -> float:
    return round(sum(1 for s in samples if start <= s.end < end) / max(end - start, 1e-9), 1)


@dataclass
class Shop:
    """An organization with a sandbox seller, ``n`` connections to it and a webhook endpoint on the receiver."""

    owner: dict[str, Any]
    seller: Seller
    connections: list[dict[str, Any]]
    endpoint: dict[str, Any]
    path: str

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.owner["headers"])

    @property
    def tenant_id(self) -> str:
        return str(self.owner["tenant"]["id"])


async def open_shop(
    c: Cluster, http: httpx.AsyncClient, *, connections: int = 1, products: int = 20, low: int = 0, **seller: Any
) -> Shop:
    """``low`` products below the default threshold (5 units), the rest well stocked."""
    owner = await register(http, "Chaos")
    s = make_seller(f"{c.sandbox}/sandbox", "wildberries", products=products, warehouses=1, **seller)
    set_low(s, low)

    async def connect(n: int) -> dict[str, Any]:
        resp = await http.post(
            "/api/v1/connections",
            json={"marketplace": "wildberries", "name": f"Shop {n}", "credentials": s.credentials},
            headers=owner["headers"],
        )
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    conns = []
    for first in range(0, connections, 10):  # a few at a time: each checks the credentials with the seller
        conns += await asyncio.gather(*(connect(n) for n in range(first, min(first + 10, connections))))
    path = f"/hooks/{uuid.uuid4().hex[:10]}"
    resp = await http.post(
        "/api/v1/webhook-endpoints",
        json={"url": c.receiver.url(path), "event_types": STOCK_EVENTS},
        headers=owner["headers"],
    )
    assert resp.status_code == 201, resp.text
    return Shop(owner, s, conns, resp.json(), path)


def set_low(seller: Seller, low: int, *, quantity: int = 2) -> list[str]:
    """The first ``low`` products hold ``quantity`` units in all (in their first cell), every other cell 40;
    returns the low products' ids."""
    cells = seller.truth()
    products = sorted({c["product_id"] for c in cells})
    lows = set(products[:low])
    items, seen = [], set()
    for cell in cells:
        pid = cell["product_id"]
        if pid in lows:
            items.append({**cell, "quantity": 0 if pid in seen else quantity})
            seen.add(pid)
        else:
            items.append({**cell, "quantity": 40})
    seller.set_stocks(items)
    return sorted(lows)


async def trigger_sync(http: httpx.AsyncClient, shop: Shop, connection_id: str) -> str:
    resp = await http.post(f"/api/v1/connections/{connection_id}/syncs", headers=shop.headers)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


async def run_states(c: Cluster, run_ids: list[str]) -> dict[str, tuple[str, str | None]]:
    rows = await c.sql("SELECT id::text, status::text, error_code FROM sync_runs WHERE id = ANY($1::uuid[])", run_ids)
    return {r[0]: (r[1], r[2]) for r in rows}


async def wait_runs_ended(c: Cluster, run_ids: list[str], timeout: float) -> dict[str, tuple[str, str | None]]:
    deadline = time.monotonic() + timeout
    while True:
        states = await run_states(c, run_ids)
        if all(s[0] in ENDED for s in states.values()) and len(states) == len(run_ids):
            return states
        if time.monotonic() > deadline:
            return states
        await asyncio.sleep(0.5)


async def history_duplicates(c: Cluster, tenant_id: str) -> int:
    """History points beyond the first per cell: the seller's stock never changes in these scenarios, so
    every one of them is a point written twice."""
    rows = await c.sql(
        "SELECT coalesce(sum(n - 1), 0)::int FROM (SELECT count(*) AS n FROM stock_history WHERE tenant_id = $1 "
        "GROUP BY variant_id, warehouse_id) d",
        uuid.UUID(tenant_id),
    )
    return int(rows[0][0])


@dataclass
class Deliveries:
    events: int  # stock events recorded for the tenant (the endpoint subscribes to each of them)
    received: int  # 2xx deliveries the receiver saw
    unique: int  # distinct webhook-ids among them
    missing: list[str] = field(default_factory=list)  # events never received
    duplicated: list[str] = field(default_factory=list)  # webhook-ids received more than once
    types: dict[str, int] = field(default_factory=dict)


async def deliveries(c: Cluster, shop: Shop) -> Deliveries:
    rows = await c.sql(
        "SELECT id::text, type FROM events WHERE tenant_id = $1 AND type = ANY($2::text[])",
        uuid.UUID(shop.tenant_id),
        STOCK_EVENTS,
    )
    got = Counter(r.headers.get("webhook-id", "") for r in c.receiver.at(shop.path))
    ids = {r[0] for r in rows}
    return Deliveries(
        events=len(ids),
        received=sum(got.values()),
        unique=len(got),
        missing=sorted(ids - set(got)),
        duplicated=sorted(k for k, n in got.items() if n > 1),
        types=dict(Counter(r[1] for r in rows)),
    )


async def wait_delivered(c: Cluster, shop: Shop, timeout: float, settle: float = 1.0) -> Deliveries:
    """Until every recorded event reached the endpoint (then ``settle`` more seconds, to see a late double)."""
    deadline = time.monotonic() + timeout
    while True:
        d = await deliveries(c, shop)
        if (d.events and not d.missing) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(settle)
    return await deliveries(c, shop)


async def pending_outbox(c: Cluster) -> int:
    return int((await c.sql("SELECT count(*) FROM outbox WHERE enqueued_at IS NULL"))[0][0])


# --- load ----------------------------------------------------------------------------------------------
# Below the self-hosted plan's per-caller limit (100 requests/s sustained): the load is a well-behaved
# client's, so every 429 would be a failure of the scenario, not of the service.
MAX_RATE = 80.0


class Load:
    """``concurrency`` clients each repeating ``step`` until stopped, together at most ``rate`` requests per
    second; every request is kept as a Sample."""

    def __init__(self, http: httpx.AsyncClient, concurrency: int, step: Any, rate: float = MAX_RATE) -> None:
        self.http, self.concurrency, self.step = http, concurrency, step
        self.interval = concurrency / rate  # each client's
        self.samples: list[Sample] = []
        self.in_flight = 0  # requests sent and not yet answered
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _client(self, n: int) -> None:
        i = 0
        start = time.monotonic() + n * self.interval / max(self.concurrency, 1)
        while not self._stop.is_set():
            wait = start + i * self.interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                if self._stop.is_set():
                    break
            self.in_flight += 1
            try:
                self.samples.append(await self.step(self.http, n, i))
            finally:
                self.in_flight -= 1
            i += 1

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(self.concurrency)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


# --- 1. PostgreSQL restarted under API load -------------------------------------------------------------
async def postgres_restart(c: Cluster, *, outage_s: float, before_s: float = 2.0, after_s: float = 6.0) -> dict:
    """Reads (through the database, not the cache) and writes (the organization's alert settings; sign-ups:
    a user, an organization and a membership in one transaction) while PostgreSQL stops for ``outage_s`` and
    starts again."""
    async with httpx.AsyncClient(base_url=c.api_url, timeout=30) as http:
        shop = await open_shop(c, http, products=20)
        run = await trigger_sync(http, shop, shop.connections[0]["id"])
        assert (await wait_runs_ended(c, [run], 60))[run][0] == "succeeded"
        h = {**shop.headers, "Cache-Control": "no-cache"}
        created: dict[str, int] = {}

        async def step(http: httpx.AsyncClient, n: int, i: int) -> Sample:
            if n == 0 and i % 4 == 0:  # a sign-up now and then (argon2 is expensive): three rows, one tx
                email = f"chaos-{uuid.uuid4().hex[:12]}@example.com"
                body = {"email": email, "password": PASSWORD, "organization_name": "Outage"}
                s = await timed(http, "register", "POST", "/api/v1/auth/register", json=body)
                created[email] = s.status or 0
                return s
            if n == 1:  # a write of the organization's settings
                body = {"units_below": 3 + i % 5}
                return await timed(http, "rule", "PUT", "/api/v1/alert-rules/default", json=body, headers=h)
            return await timed(http, "read", "GET", "/api/v1/products", params={"limit": 20}, headers=h)

        load = Load(http, 6, step)
        load.start()
        await asyncio.sleep(before_s)
        down = time.monotonic()
        await asyncio.to_thread(c.postgres.stop, "fast")
        await asyncio.sleep(outage_s)
        await asyncio.to_thread(c.postgres.start)
        up = time.monotonic()
        await asyncio.sleep(after_s)
        await load.stop()
        end = time.monotonic()

    failures = [s for s in load.samples if not s.ok]
    reads_before = [s for s in load.samples if s.kind == "read" and s.end < down]
    reads_after = [s for s in load.samples if s.kind == "read" and s.start > up + 5.0]
    wrong = [s for s in failures if not (s.status == 503 and s.code == "database_unavailable" and s.retry_after)]
    outside = [s for s in failures if s.end < down or s.start > up + 5.0]
    last_failure = max((s.end for s in failures), default=up)
    # Every sign-up answered 201 has its user, organization and membership; every refused one has none of them.
    rows = await c.sql(
        "SELECT u.email, count(m.*) FROM users u LEFT JOIN memberships m ON m.user_id = u.id "
        "WHERE u.email = ANY($1::text[]) GROUP BY u.email",
        list(created),
    )
    stored = {r[0]: int(r[1]) for r in rows}
    partial = [e for e, st in created.items() if (st == 201) != (stored.get(e) == 1)]
    orphans = await c.sql(
        "SELECT count(*) FROM tenants t WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.tenant_id = t.id)"
    )
    return {
        "requests": len(load.samples),
        "outage_s": round(up - down, 2),
        "failed": len(failures),
        "failed_503_database_unavailable": len(failures) - len(wrong),
        "other_failures": [f"{s.kind}:{s.status}:{s.code or s.error}" for s in wrong][:20],
        "failures_outside_outage": len(outside),
        "recovery_s": round(max(0.0, last_failure - up), 2),  # the last failure, counted from PostgreSQL's return
        "first_ok_after_s": round(min((s.end for s in load.samples if s.ok and s.start >= up), default=end) - up, 2),
        "signups": len(created),
        "signups_ok": sum(1 for st in created.values() if st == 201),
        "partial_writes": len(partial) + int(orphans[0][0]),
        # Same-run baseline: the load before the outage against the load once recovered.
        "req_per_s_before": rate(load.samples, down - before_s, down),
        "req_per_s_after": rate(load.samples, up + 5.0, end) if end > up + 5.0 else None,
        "read_p50_ms_before": p50_ms(reads_before),
        "read_p50_ms_after": p50_ms(reads_after),
    }


# --- 2. Redis stopped ----------------------------------------------------------------------------------
async def redis_outage(c: Cluster, *, outage_s: float, low: int = 4, deadline_s: float = 90.0) -> dict:
    """Redis stops while a seller reads their stock and asks for syncs; afterwards the syncs run and every
    alert they raise reaches the webhook endpoint exactly once (the outbox holds what could not be queued)."""
    async with httpx.AsyncClient(base_url=c.api_url, timeout=30) as http:
        shop = await open_shop(c, http, connections=2, products=20)
        # The silent baseline (nothing low): scheduled syncs, so the manual ones below meet no cooldown.
        baseline = [await enqueue_sync(c, shop, conn["id"]) for conn in shop.connections]
        assert all(s[0] == "succeeded" for s in (await wait_runs_ended(c, baseline, 60)).values())
        lows = set_low(shop.seller, low)
        h = shop.headers
        warm = [
            await timed(http, "read", "GET", "/api/v1/products", params={"limit": 50}, headers=h) for _ in range(10)
        ]
        assert all(s.ok for s in warm)
        during: list[Sample] = []
        cache: Counter[str] = Counter()
        skipped_before = await metric_total(c, http, "stock_tracker_rate_limiter_unavailable_total")
        down = time.monotonic()
        await asyncio.to_thread(c.redis.stop)
        runs = []
        for conn in shop.connections:
            s = await timed(http, "sync", "POST", f"/api/v1/connections/{conn['id']}/syncs", headers=h)
            during.append(s)
        # The run ids as the API answered them (read back: a refused trigger would show as a failure above).
        rows = await c.sql(
            "SELECT id::text FROM sync_runs WHERE tenant_id = $1 AND trigger = 'manual'", uuid.UUID(shop.tenant_id)
        )
        runs = [r[0] for r in rows]
        ready: Counter[int] = Counter()
        while time.monotonic() - down < outage_s:
            start = time.monotonic()
            resp = await http.get("/api/v1/products", params={"limit": 50}, headers=h)
            during.append(Sample("read", start, time.monotonic(), resp.status_code))
            cache[resp.headers.get("x-cache", "-")] += 1
            ready[(await http.get("/health/ready")).status_code] += 1
            await asyncio.sleep(0.1)
        queued_in_outbox = await pending_outbox(c)
        skipped = await metric_total(c, http, "stock_tracker_rate_limiter_unavailable_total") - skipped_before
        worker_alive_in_outage = c.worker.alive()
        await asyncio.to_thread(c.redis.start)
        up = time.monotonic()
        worker_restarted = False
        if not c.worker.alive():  # what the supervisor (compose's restart policy) does
            await asyncio.to_thread(c.start_worker)
            worker_restarted = True
        states = await wait_runs_ended(c, runs, deadline_s)
        synced_s = time.monotonic() - up
        d = await wait_delivered(c, shop, deadline_s, settle=1.5)
        after = await timed(http, "read", "GET", "/api/v1/products", params={"limit": 50}, headers=h)
    failures = [s for s in during if not s.ok]
    return {
        "outage_s": round(up - down, 2),
        "requests_during": len(during),
        "failed_during": len(failures),
        "failures": [f"{s.kind}:{s.status}:{s.code or s.error}" for s in failures][:20],
        "x_cache_during": dict(cache),
        "limiter_checks_skipped": skipped,  # fail-open: admitted and counted
        # Same-run baseline: the cached read before the outage against the same read from PostgreSQL.
        "read_p50_ms_before": p50_ms(warm[1:]),
        "read_p50_ms_during": p50_ms([s for s in during if s.kind == "read"]),
        "ready_during": {str(k): v for k, v in ready.items()},
        "outbox_pending_during": queued_in_outbox,
        "worker_alive_during": worker_alive_in_outage,
        "worker_restarted": worker_restarted,
        "runs": len(runs),
        "run_statuses": dict(Counter(s[0] for s in states.values())),
        "runs_ended_after_s": round(synced_s, 1),
        "low_products": len(lows) * len(shop.connections),
        "events": d.types,
        "webhooks_received": d.received,
        "webhooks_missing": len(d.missing),
        "webhooks_duplicated": len(d.duplicated),
        "read_after": after.status,
    }


async def metric_total(c: Cluster, http: httpx.AsyncClient, name: str) -> float:
    """The sum of a counter's series on the API's /metrics."""
    resp = await http.get("/metrics", headers={"Authorization": f"Bearer {c.metrics_token}"})
    assert resp.status_code == 200, resp.text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in resp.text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


async def enqueue_sync(c: Cluster, shop: Shop, connection_id: str) -> str:
    """A scheduled sync, straight onto the queue (what the fan-out cron does); returns its run id."""
    from app.domain.sync.services import run_id_for
    from app.lib.redis import arq_client

    job_id = f"sync:{connection_id}:chaos:{uuid.uuid4().hex[:8]}"
    redis = arq_client(c.settings.redis_url, c.settings.queue_name)
    try:
        await redis.enqueue_job(
            "sync.connection",
            tenant_id=shop.tenant_id,
            connection_id=connection_id,
            trigger="scheduled",
            _job_id=job_id,
        )
    finally:
        await redis.aclose()
    return str(run_id_for(job_id))


# --- 3. SIGTERM to the API under load ------------------------------------------------------------------
async def api_sigterm(
    c: Cluster, *, concurrency: int = 8, before_s: float = 2.0, grace_s: float = 10.0, restart: bool = True
) -> dict:
    """Clients keep the API busy (reads of a 200-product page through the database, settings writes); the API
    gets SIGTERM; the clients stop sending at that instant, as a proxy that drains the instance would."""
    async with httpx.AsyncClient(base_url=c.api_url, timeout=60) as http:
        shop = await open_shop(c, http, products=200)
        run = await trigger_sync(http, shop, shop.connections[0]["id"])
        assert (await wait_runs_ended(c, [run], 60))[run][0] == "succeeded"
        h = {**shop.headers, "Cache-Control": "no-cache"}

        async def step(http: httpx.AsyncClient, n: int, i: int) -> Sample:
            if n % 4 == 3:
                body = {"units_below": 3 + i % 5}
                return await timed(http, "rule", "PUT", "/api/v1/alert-rules/default", json=body, headers=h)
            return await timed(http, "read", "GET", "/api/v1/products", params={"limit": 200}, headers=h)

        load = Load(http, concurrency, step)
        load.start()
        await asyncio.sleep(before_s)
        deadline = time.monotonic() + 10
        while load.in_flight < concurrency // 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.001)  # signal while requests are being served, not between them
        load._stop.set()  # no new request after the signal …
        sent = time.monotonic()
        c.api.signal(signal.SIGTERM)
        await load.stop()  # … and every one already sent must be answered
        finished = time.monotonic()
        code = await asyncio.to_thread(_wait_exit, c, grace_s + 30)
        exited = time.monotonic()
    if restart:
        c.start_api()
    # Requests written before the signal must all be answered; a client that still wrote one after it (its
    # task was already past the stop check) met a closing server, as it would a drained instance.
    before = [s for s in load.samples if s.sent is not None and s.sent <= sent]
    failures = [s for s in before if not s.ok]
    late = [s for s in load.samples if s not in before]
    return {
        "requests": len(before),
        "written_after_sigterm": len(late),
        "in_flight_at_sigterm": sum(1 for s in before if s.end > sent),
        "failed": len(failures),
        "failures": [f"{s.kind}:{s.status}:{s.code or s.error}" for s in failures][:20],
        "last_answer_after_s": round(finished - sent, 2),
        "exit_s": round(exited - sent, 2),
        "exit_code": code,
        "grace_s": grace_s,
    }


def _wait_exit(c: Cluster, timeout: float) -> int | None:
    try:
        return c.api.wait(timeout)
    except Exception:
        return None


# --- 4. the worker SIGKILLed during queued syncs -------------------------------------------------------
async def worker_sigkill(
    c: Cluster, *, syncs: int, kills: int = 3, latency_ms: int = 300, fail_fast: bool = True
) -> dict:
    """``syncs`` manual syncs of one organization's connections (each first sync with a few products low,
    so each sends one baseline digest); the worker is SIGKILLed ``kills`` times while they run and
    restarted each time (what the supervisor does). The figures count the runs that succeeded, the ones
    ended ``abandoned``, and the ones the sweep resumed after their worker was killed. ``fail_fast``: stop
    at once when a sync lock outlives the lease (its runs cannot end in time) instead of waiting out the
    deadline; the benchmark waits it out."""
    async with httpx.AsyncClient(base_url=c.api_url, timeout=60) as http:
        shop = await open_shop(c, http, connections=syncs, products=10, low=3)
        shop.seller.faults(latency_ms=latency_ms, rate_limits="off")  # slow enough to be killed mid-way
        runs = list(await asyncio.gather(*(trigger_sync(http, shop, conn["id"]) for conn in shop.connections)))
        killed_running = []
        for _ in range(kills):
            await _until_running(c, runs, 30)
            states = await run_states(c, runs)
            killed_running.append(sum(1 for s in states.values() if s[0] == "running"))
            await asyncio.to_thread(c.kill_worker)
            await asyncio.to_thread(c.start_worker)
        last_kill = time.monotonic()
        shop.seller.faults(latency_ms=0, rate_limits="off")
        # A lock that outlives the contract's deadline cannot let its runs end in time: say so at once.
        lease = float(c.settings.sync_lease_s)
        overlong = await _locks_longer_than(c, lease) if fail_fast and kills else {}
        states = await (run_states(c, runs) if overlong else wait_runs_ended(c, runs, lease + 60))
        ended_s = time.monotonic() - last_kill
        # The service works on after the kills: one more (scheduled) sync, of a connection none of whose runs
        # succeeded if there is one — every run may have been abandoned, and that connection's first success
        # then opens its alerts and sends a digest, so the exactly-once check below always has events to check.
        after_kills = None
        if not overlong:
            unsynced = [
                conn["id"] for conn, run in zip(shop.connections, runs, strict=True) if states[run][0] != "succeeded"
            ]
            extra = await enqueue_sync(c, shop, unsynced[0] if unsynced else shop.connections[0]["id"])
            after_kills = (await wait_runs_ended(c, [extra], 60))[extra][0]
        d = await wait_delivered(c, shop, 15) if not overlong else await deliveries(c, shop)
        dupes = await history_duplicates(c, shop.tenant_id)
        resumes = await c.sql("SELECT resumes FROM sync_runs WHERE id = ANY($1::uuid[]) AND resumes > 0", runs)
    status = Counter(s[0] for s in states.values())
    return {
        "syncs": syncs,
        "kills": kills,
        "lease_s": lease,
        "running_at_each_kill": killed_running,
        "locks_longer_than_lease": overlong,
        "ended": sum(n for st, n in status.items() if st in ENDED),
        "succeeded": status["succeeded"],
        "abandoned": sum(1 for s in states.values() if s[1] == "abandoned"),
        # Runs the sweep resumed under a fresh job after a kill, and how many resumes in all.
        "resumed": len(resumes),
        "resumes": sum(int(r[0]) for r in resumes),
        "statuses": dict(status),
        "failed_without_reason": sum(1 for s in states.values() if s[0] == "failed" and not s[1]),
        "ended_within_s": None if overlong else round(ended_s, 1),
        "sync_after_kills": after_kills,
        "history_duplicates": dupes,
        "events": d.events,
        "webhooks_missing": len(d.missing),
        "webhooks_duplicated": len(d.duplicated),
    }


async def _until_running(c: Cluster, runs: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(s[0] == "running" for s in (await run_states(c, runs)).values()):
            return
        await asyncio.sleep(0.1)


async def _locks_longer_than(c: Cluster, seconds: float) -> dict[str, float]:
    redis = Redis.from_url(c.redis.url)
    try:
        out = {}
        async for key in redis.scan_iter(match="lock:sync:*"):
            ttl = await redis.pttl(key)
            if ttl > seconds * 1000:
                out[key.decode()] = round(ttl / 1000, 1)
        return out
    finally:
        await redis.aclose()


# --- 5. soak -------------------------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    """Resident set of a process and its children (uvicorn's workers), in MiB."""
    import psutil

    proc = psutil.Process(pid)
    return round(sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20, 1)


def open_fds(pid: int) -> int:
    import psutil

    proc = psutil.Process(pid)
    return sum(p.num_fds() for p in [proc, *proc.children(recursive=True)])


async def connection_counts(c: Cluster) -> dict[str, int]:
    rows = await c.sql(
        "SELECT usename, count(*) FROM pg_stat_activity WHERE datname = 'stock_tracker' GROUP BY usename"
    )
    redis = Redis.from_url(c.redis.url)
    try:
        clients = int((await redis.info("clients"))["connected_clients"])
    finally:
        await redis.aclose()
    return {"postgres_app": sum(int(r[1]) for r in rows if r[0] == "stock_tracker_app"), "redis": clients}


async def soak(c: Cluster, *, seconds: float, sample_every: float, concurrency: int = 4, rate: float = 60.0) -> dict:
    """Steady mixed load (cached and uncached reads, writes, manual syncs) with the API's and the worker's
    RSS, open file descriptors and server connections sampled every ``sample_every`` seconds."""
    async with httpx.AsyncClient(base_url=c.api_url, timeout=30) as http:
        shop = await open_shop(c, http, connections=2, products=40, low=2)
        h = shop.headers
        nocache = {**h, "Cache-Control": "no-cache"}
        last_sync = [0.0]

        async def step(http: httpx.AsyncClient, n: int, i: int) -> Sample:
            if n == 0 and time.monotonic() - last_sync[0] > 61:  # a manual sync per cooldown
                last_sync[0] = time.monotonic()
                conn = shop.connections[i % len(shop.connections)]["id"]
                return await timed(http, "sync", "POST", f"/api/v1/connections/{conn}/syncs", headers=h)
            if n == 1 and i % 10 == 0:
                body = {"units_below": 3 + i % 5}
                return await timed(http, "rule", "PUT", "/api/v1/alert-rules/default", json=body, headers=h)
            headers = nocache if i % 3 == 0 else h
            return await timed(http, "read", "GET", "/api/v1/products", params={"limit": 20}, headers=headers)

        counts = await connection_counts(c)
        points = [  # before the load: the baseline every later point is read against
            {
                "t_s": 0,
                "api_rss_mb": rss_mb(c.api.pid),
                "worker_rss_mb": rss_mb(c.worker.pid),
                "api_fds": open_fds(c.api.pid),
                "worker_fds": open_fds(c.worker.pid),
                **counts,
                "req_per_s": 0.0,
            }
        ]
        load = Load(http, concurrency, step, rate)
        load.start()
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            await asyncio.sleep(sample_every)
            counts = await connection_counts(c)
            window = [s for s in load.samples if s.end > time.monotonic() - sample_every]
            points.append(
                {
                    "t_s": round(time.monotonic() - t0),
                    "api_rss_mb": rss_mb(c.api.pid),
                    "worker_rss_mb": rss_mb(c.worker.pid),
                    "api_fds": open_fds(c.api.pid),
                    "worker_fds": open_fds(c.worker.pid),
                    **counts,
                    "req_per_s": round(len(window) / sample_every, 1),
                }
            )
        await load.stop()
    failures = [s for s in load.samples if not s.ok]
    return {
        "requests": len(load.samples),
        "failed": len(failures),
        "failures": [f"{s.kind}:{s.status}:{s.code or s.error}" for s in failures][:20],
        "points": points,
    }


def dump(figures: dict) -> str:
    return json.dumps(figures, indent=2, default=str)


__all__ = ["api_sigterm", "os", "postgres_restart", "redis_outage", "soak", "worker_sigkill"]
