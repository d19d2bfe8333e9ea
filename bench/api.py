"""API benchmarks: the authenticated, rate-limited, cached product list (closed loop with wrk, and at a fixed
1 000 req/s offered load with hey), a single product GET through the RLS transaction (cache bypassed), the
limiter on vs off, and two same-run baselines: a FastAPI twin of the cached list (same Redis cache, same
API-key check, same limiter, same uvicorn settings) and the `limits` library's moving window per check.

    python bench/api.py [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--redis redis://127.0.0.1:6379/0]
                        [--duration 10] [--runs 3] [--connections 64] [--keys 400] [--against DIR ...]

Everything runs on loopback: a fresh database (dropped at the end), the sandbox marketplace in a thread, and
`python -m app api --workers 2` (or the twin under the same uvicorn options) as a subprocess. Figures are the
median of ``--runs`` runs; JSON goes to bench/results/api.json. ``--against DIR`` (repeatable) also serves the
cached list from other checkouts of the repo (before/after a change) on the same database and keys, the wrk
runs alternating between the trees (ABBA); ``--compare-only`` skips every other figure:

    python bench/api.py --against /tmp/main-tree --compare-only --runs 10 --duration 5

Why many API keys: every plan holds one key to a 1-second burst window (50 on the self-hosted plan), so a
single key at thousands of req/s would measure 429s. The load is spread round-robin over ``--keys`` keys of
one organization (one cache, one tenant), each kept under its own limits, so every request pays the full
check and none is refused.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "api.json"
LIST_PATH = "/api/v1/products?limit=50"


# ---- the FastAPI twin (served by uvicorn --factory bench.api:create_twin) ------------------------------------


def create_twin() -> Any:
    """The cached product list in FastAPI, doing what the Litestar stack does per request: the same API-key
    resolver, the same limiter calls and usage count, the same Redis cache entries (and a database build on a
    miss). Settings come from the environment, as for `stock-tracker api`."""
    from app.config import load_settings
    from app.db.engine import create_engine, create_sessionmaker
    from app.domain.apikeys import keys as api_keys
    from app.lib.errors import AppError
    from app.lib.ratelimit import RateLimiter
    from app.lib.redis import redis_client
    from app.lib.resp import PipelinedRedis
    from app.server.auth import ApiKeyResolver, api_key_principal
    from app.server.cache import PREFETCH_STATE, _normalized_query, entry_key, etag_of, version_key
    from app.server.lease import GateLeases, LeaseTable
    from app.server.ratelimit import AuthThrottle, RateLimitMiddleware, TenantPlans

    settings = load_settings()
    state = SimpleNamespace()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        engine = create_engine(settings)
        state.sessionmaker = create_sessionmaker(engine)
        state.redis = redis_client(settings.redis_url)
        state.gate_redis = PipelinedRedis(settings.redis_url)  # as the API's lifespan does
        state.api_limiter = RateLimiter(state.gate_redis, prefix="rl:api", fail_open=settings.rate_limit_fail_open)
        # The same token leases as the API's lifespan (app/server/lease.py): the same limiter, per process.
        state.leases = LeaseTable(settings.rate_limit_lease_tokens, settings.rate_limit_lease_seconds)
        leases = GateLeases(state.leases, state.gate_redis, settings.redis_url)
        leases.start()
        state.resolver = ApiKeyResolver(
            state.sessionmaker, api_keys.hash_secret(settings.api_key_secret, settings.jwt_secret), engine
        )
        yield
        await leases.stop()
        await state.gate_redis.aclose()
        await state.redis.aclose()
        await engine.dispose()

    plans = TenantPlans(settings)
    limits = RateLimitMiddleware(settings, plans, AuthThrottle.default())
    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> JSONResponse:
        body = {"status": exc.status_code, "code": exc.code, "title": exc.title, "detail": exc.detail}
        return JSONResponse(body, exc.status_code, headers=exc.headers, media_type="application/problem+json")

    @app.get("/api/v1/products")
    async def list_products(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        token = header.partition(" ")[2].strip()
        record, entry = await state.resolver.resolve(token)
        await state.resolver.touch(record, entry)
        principal = api_key_principal(record)
        # The same gate call as the Litestar middleware: limits, usage and the cache lookup in one round trip.
        scope = {
            "app": SimpleNamespace(state=state),
            "state": {"plan": record.plan},
            "method": "GET",
            "path": "/api/v1/products",
            "query_string": request.url.query.encode(),
            "headers": [],
            "route_handler": SimpleNamespace(opt={"cache": "products.list"}),
        }
        rl_headers = await limits._check_caller(scope, principal)
        key = entry_key(
            record.tenant_id, "products.list", "/api/v1/products", _normalized_query(request.url.query.encode())
        )
        prefetched = scope["state"].get(PREFETCH_STATE)
        if prefetched is not None:
            version, value = prefetched
        else:
            version, value = await state.redis.mget(version_key(record.tenant_id), key)
        headers = {k.decode(): v.decode() for k, v in rl_headers}
        if version is not None and value is not None and value[:16] == version:
            headers.update({"etag": f'"{value[16:48].decode()}"', "x-cache": "hit"})
            return Response(value[48:], media_type="application/json", headers=headers)
        body = await _build_list(state, record.tenant_id, settings.low_stock_units)
        if version is not None:
            await state.redis.set(key, version + etag_of(body) + body, ex=300)
        headers.update({"etag": f'"{etag_of(body).decode()}"', "x-cache": "miss"})
        return Response(body, media_type="application/json", headers=headers)

    return app


async def _build_list(state: Any, tenant_id: uuid.UUID, low: int) -> bytes:
    """The twin's cache-miss path: the same repository query as the Litestar handler (limit 50)."""
    import msgspec

    from app.db.engine import set_tenant
    from app.domain.catalog.repositories import CatalogRepository

    async with state.sessionmaker() as session:
        await set_tenant(session, tenant_id)
        rows = await CatalogRepository(session, tenant_id).list_products(
            limit=51, after=None, connection_id=None, marketplace=None, search=None, stock_status=None, low_units=low
        )
    items = [
        {"id": r.id, "title": r.title, "external_id": r.external_id, "total_quantity": int(r.total)} for r in rows[:50]
    ]
    return msgspec.json.encode({"items": items, "next_cursor": None})


# ---- processes and servers -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def server(
    cmd: list[str], env: dict[str, str], ready_path: str, cwd: Path = ROOT
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    full = [*cmd, "--port", str(port)]
    proc = subprocess.Popen(full, env=env, cwd=cwd, stdout=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + ready_path, proc)
        yield base, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def api_cmd() -> list[str]:
    return [sys.executable, "-m", "app", "api", "--host", "127.0.0.1", "--workers", "2"]


def twin_cmd() -> list[str]:
    # The same uvicorn options `stock-tracker api` uses (app/cli/commands.py), for a fair comparison.
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.api:create_twin",
        "--factory",
        "--http",
        "app.server.http_protocol:ApiHttpProtocol",
        "--host",
        "127.0.0.1",
        "--workers",
        "2",
        "--no-access-log",
        "--no-server-header",
        "--log-level",
        "warning",
    ]


def rss_mb(proc: subprocess.Popen[bytes]) -> float:
    """Resident memory of the server's worker processes (children of the supervisor), MiB each, max."""
    out = subprocess.run(["ps", "-o", "pid=,ppid=,rss="], capture_output=True, text=True, check=True).stdout
    rows = [tuple(int(x) for x in line.split()) for line in out.splitlines() if line.strip()]
    children = [rss for pid, ppid, rss in rows if ppid == proc.pid]
    return round(max(children or [0]) / 1024, 1)


# ---- load generators ------------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", value.strip())
    assert match, value
    return float(match.group(1)) * _UNITS[match.group(2)]


def _lua(paths: list[str], keys: list[str], extra_headers: dict[str, str]) -> str:
    quoted = ", ".join(json.dumps(k) for k in keys)
    path_list = ", ".join(json.dumps(p) for p in paths)
    extra = "".join(f"headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in extra_headers.items())
    return f"""
local keys = {{{quoted}}}
local paths = {{{path_list}}}
local i = 0
local threads = 0
setup = function(thread)
  thread:set("offset", threads * 7919)
  threads = threads + 1
end
init = function(args)
  i = offset or 0
end
request = function()
  i = i + 1
  local headers = {{}}
  headers["Authorization"] = "Bearer " .. keys[(i % #keys) + 1]
  {extra}
  return wrk.format("GET", paths[(i % #paths) + 1], headers)
end
"""


def server_cpu_s(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user + system) the server's worker processes have used so far."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
    total = 0
    for pid in [proc.pid, *(int(x) for x in out.split())]:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


# The Redis server's process when it runs on this machine (its CPU per request is reported beside the API's).
REDIS_PID: int | None = None


def find_redis_pid(redis_url: str) -> int | None:
    """The local redis-server's pid (INFO's ``process_id``), or None when it is not on this machine."""
    import redis as redis_sync

    client = redis_sync.Redis.from_url(redis_url)
    try:
        pid = int(client.info("server")["process_id"])
    except Exception:
        return None
    finally:
        client.close()
    return pid if Path(f"/proc/{pid}/stat").exists() else None


def pid_cpu_s(pid: int | None) -> float:
    if pid is None:
        return 0.0
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def wrk(
    base: str,
    paths: list[str],
    keys: list[str],
    *,
    duration: int,
    connections: int,
    headers: dict[str, str] | None = None,
    proc: subprocess.Popen[bytes] | None = None,
) -> dict[str, float]:
    """Closed-loop maximum throughput; keys rotate round-robin so no key outruns its own limits. With the
    server's ``proc``, also its CPU time per request (µs): what a request costs the API whatever share of
    the shared machine it got — the figure to compare when other work is loading the cores."""
    cpu_before = server_cpu_s(proc) if proc is not None else 0.0
    redis_before = pid_cpu_s(REDIS_PID)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(paths, keys, headers or {}))
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name, base],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration + 60,
        ).stdout
    finally:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(x) for x in socket_errors.groups())
    result = {"rps": round(rps), "p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "errors": errors}
    if proc is not None:
        result["cpu_us_per_req"] = round((server_cpu_s(proc) - cpu_before) * 1e6 / max(rps * duration, 1), 1)
    if REDIS_PID is not None:
        # Redis's share: the gate's script on every authenticated request (the floor's is ~0).
        result["redis_cpu_us_per_req"] = round((pid_cpu_s(REDIS_PID) - redis_before) * 1e6 / max(rps * duration, 1), 1)
    return result


def hey_fixed_rate(
    base: str, path: str, keys: list[str], *, rate: int, duration: int, per_key: int = 150
) -> dict[str, float]:
    """Fixed offered load with hey -q: one hey per key, ``per_key`` req/s each (under the self-hosted plan's
    burst and minute windows, so nothing is refused). Few load processes on purpose: each hey is a Go
    runtime competing for the same 2 cores, and 25 of them at 40 req/s added tens of ms of scheduling noise
    to the p99 of even /health/live."""
    count = max(1, -(-rate // per_key))
    assert len(keys) >= count, "not enough API keys for this offered load"
    per_worker = max(1, round(rate / count / 2))  # hey -q is per worker; 2 workers per hey
    procs = [
        subprocess.Popen(
            [
                "hey",
                "-z",
                f"{duration}s",
                "-c",
                "2",
                "-q",
                str(per_worker),
                "-o",
                "csv",
                "-H",
                f"Authorization: Bearer {key}",
                base + path,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for key in keys[:count]
    ]
    latencies: list[float] = []
    errors = 0
    for proc in procs:
        out, _ = proc.communicate(timeout=duration + 60)
        for row in csv.DictReader(io.StringIO(out)):
            latencies.append(float(row["response-time"]) * 1000)
            if not row["status-code"].startswith("2"):
                errors += 1
    latencies.sort()
    return {
        "offered_rps": rate,
        "rps": round(len(latencies) / duration),
        "p50_ms": round(latencies[len(latencies) // 2], 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)], 2),
        "errors": errors,
    }


def soak(
    base: str,
    proc: subprocess.Popen[bytes],
    keys: list[str],
    product_paths: list[str],
    *,
    seconds: int,
    connections: int,
) -> dict[str, Any]:
    """Load for ``seconds`` in 30 s stretches, alternating cached reads (list pages, product pages, the summary)
    and uncached product GETs; the API workers' resident memory is sampled after every stretch: is it
    bounded, and does it grow?"""
    paths = [LIST_PATH, "/api/v1/products?limit=10", "/api/v1/stock/summary", *product_paths[:50]]
    samples = [rss_mb(proc)]
    requests = 0
    left = seconds
    turn = 0
    while left > 0:
        stretch = min(30, left)
        if turn % 2:  # every other stretch: uncached product GETs, so the database path stays in the mix
            bypass = {"Cache-Control": "no-cache, no-store"}
            got = wrk(base, product_paths, keys, duration=stretch, connections=connections, headers=bypass)
        else:
            got = wrk(base, paths, keys, duration=stretch, connections=connections)
        turn += 1
        requests += int(got["rps"] * stretch)
        left -= stretch
        samples.append(rss_mb(proc))
    return {
        "seconds": seconds,
        "requests": requests,
        "rss_mb": samples,
        "rss_max_mb": max(samples),
        "growth_last_half_mb": round(samples[-1] - samples[len(samples) // 2], 1),
    }


def compare_trees(
    env: dict[str, str], trees: list[str], keys: list[str], *, runs: int, duration: int, connections: int
) -> dict[str, Any]:
    """The cached list served by this tree and by other checkouts of the app (``--against``: e.g. main
    before a change, exported with ``git archive``), all on the same database, Redis, keys and settings, the
    wrk runs alternating between them so the machine's drift falls on all alike. Each API gets a small
    database pool (the cached list only looks keys up), so three of them stay far from max_connections."""
    with contextlib.ExitStack() as stack:
        bases: dict[str, str] = {}
        procs: dict[str, subprocess.Popen[bytes]] = {}
        for tree in [str(ROOT), *trees]:
            root = Path(tree).resolve()
            tree_env = {**env, "PYTHONPATH": str(root), "STOCK_TRACKER_DB_POOL_SIZE": "5"}
            base, proc = stack.enter_context(server(api_cmd(), tree_env, "/health/ready", cwd=root))
            warm(base, keys, [LIST_PATH])
            name = "this tree" if root == ROOT else tree
            bases[name], procs[name] = base, proc
        per_tree: dict[str, list[dict[str, float]]] = {name: [] for name in bases}
        names = list(bases)
        for run in range(runs):
            for name in names if run % 2 == 0 else names[::-1]:  # ABBA: neither tree always goes first
                per_tree[name].append(
                    wrk(bases[name], [LIST_PATH], keys, duration=duration, connections=connections, proc=procs[name])
                )
    figures: dict[str, Any] = {name: median_of(r) for name, r in per_tree.items()}
    # The median of the per-round ratios: each round's trees ran back to back, under the same outside load.
    # CPU per request of each tree's API workers, per round, relative to this tree (lower costs less).
    figures["cpu_per_request_vs_this_tree"] = {
        name: round(
            statistics.median(
                other["cpu_us_per_req"] / max(ours["cpu_us_per_req"], 1e-9)
                for other, ours in zip(per_tree[name], per_tree["this tree"], strict=True)
            ),
            2,
        )
        for name in names
    }
    figures["rps_vs_this_tree"] = {
        name: round(
            statistics.median(
                other["rps"] / max(ours["rps"], 1)
                for other, ours in zip(per_tree[name], per_tree["this tree"], strict=True)
            ),
            2,
        )
        for name in names
    }
    return figures


def profile(
    base: str, proc: subprocess.Popen[bytes], keys: list[str], *, seconds: int, connections: int, top: int = 30
) -> dict[str, Any]:
    """Where an API worker's time goes serving the cached list under wrk: ``py-spy record`` (``pip install
    py-spy`` into the venv; not a project dependency) on one worker for ``seconds``, folded into the functions
    with the largest inclusive and self shares of the samples. The raw collapsed stacks are kept in
    bench/results/api-profile.txt (flamegraph.pl or speedscope read them)."""
    out = subprocess.run(["ps", "-o", "pid=,rss=", "--ppid", str(proc.pid)], capture_output=True, text=True)
    # The largest child is an API worker (the others are multiprocessing's helpers).
    worker = max((tuple(int(x) for x in line.split()) for line in out.stdout.splitlines()), key=lambda r: r[1])[0]
    raw = RESULTS.parent / "api-profile.txt"
    raw.parent.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    # Every key used once in every worker first: a key's first request in a process writes its last_used_at
    # (then once a minute), which would otherwise fill the profile's first seconds.
    wrk(base, [LIST_PATH], keys, duration=5, connections=connections)
    load = threading.Thread(
        target=wrk, args=(base, [LIST_PATH], keys), kwargs={"duration": seconds + 4, "connections": connections}
    )
    load.start()
    time.sleep(2)
    subprocess.run(
        [
            str(spy),
            "record",
            "--pid",
            str(worker),
            "--duration",
            str(seconds),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(raw),
            "--nonblocking",
        ],
        check=True,
        capture_output=True,
    )
    load.join()
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        # "function (path/file.py:line)" → "function (file.py)": lines of one function fold together.
        frames = [re.sub(r"\((?:.*/)?([^/]+?):\d+\)$", r"(\1)", f) for f in stack.split(";")]
        total += count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count

    def share(table: dict[str, int]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in sorted(table.items(), key=lambda kv: -kv[1])[:top]]

    return {"samples": total, "inclusive_pct": share(inclusive), "self_pct": share(own)}


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


# ---- the limiter per check: ours vs limits' moving window -------------------------------------------------------


async def limiter_costs(redis_url: str, checks: int = 5000) -> dict[str, Any]:
    from limits import parse
    from limits.aio.strategies import MovingWindowRateLimiter
    from limits.storage import storage_from_string
    from redis.asyncio import Redis

    from app.domain.billing.plans import PLANS
    from app.lib.ratelimit import RateLimiter, _counter_name
    from app.server.ratelimit import plan_limits

    redis = Redis.from_url(redis_url)
    ours = RateLimiter(redis, prefix=f"bench:{secrets.token_hex(4)}")
    policy = plan_limits(PLANS["self_hosted"]).caller  # burst + minute: both windows in one round trip
    storage = storage_from_string("async+" + redis_url, implementation="redispy")
    moving = MovingWindowRateLimiter(storage)
    items = [parse("50/second"), parse("3000/minute")]
    prefix = f"bench-{secrets.token_hex(4)}"

    async def timed(fn: Any) -> list[float]:
        out = []
        for i in range(checks):
            t = time.perf_counter()
            await fn(i)
            out.append((time.perf_counter() - t) * 1e6)
        out.sort()
        return out

    def stats(samples: list[float]) -> dict[str, float]:
        return {"p50_us": round(samples[len(samples) // 2], 1), "p99_us": round(samples[int(len(samples) * 0.99)], 1)}

    # Keys rotate over 100 callers so no window fills (a refused check costs the same round trip anyway).
    ours_samples = await timed(lambda i: ours.hit(f"k{i % 100}", policy))
    one = await timed(lambda i: moving.hit(items[0], prefix, f"k{i % 100}"))

    async def both(i: int) -> None:
        for item in items:
            await moving.hit(item, prefix, f"b{i % 100}")

    two = await timed(both)
    # Memory per active key after 1 000 requests each.
    for _ in range(1000):
        await ours.hit("mem", policy)
        await moving.hit(items[1], prefix, "mem")
    our_keys = []
    for window in policy.windows:
        name = _counter_name(ours.prefix, "mem", f"{policy.name}\x00{window.name}")
        our_keys += [k async for k in redis.scan_iter(f"{name}:*")]
    our_bytes = sum([await redis.memory_usage(k) or 0 for k in our_keys])
    their_keys = [k async for k in redis.scan_iter(f"*{prefix}*mem*")]
    their_bytes = sum([await redis.memory_usage(k) or 0 for k in their_keys])
    for pattern in (f"{ours.prefix}:*", f"*{prefix}*"):
        stale = [k async for k in redis.scan_iter(pattern)]
        if stale:
            await redis.delete(*stale)
    await redis.aclose()
    return {
        "ours_sliding_counter_2_windows": stats(ours_samples),
        "limits_moving_window_1_limit": stats(one),
        "limits_moving_window_2_limits": stats(two),
        "memory_bytes_per_key_after_1000_requests": {
            "ours_2_windows": our_bytes,
            "ours_keys": len(our_keys),
            "limits_moving_window_1_limit": their_bytes,
        },
    }


# ---- set-up: database, sandbox, tenant, keys -----------------------------------------------------------------


def _asyncpg_kwargs(url: str) -> dict[str, Any]:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    kwargs: dict[str, Any] = {"user": u.username or "postgres", "password": u.password, "database": u.database}
    if "host" in u.query:
        kwargs["host"] = u.query["host"]
    else:
        kwargs.update(host=u.host or "127.0.0.1", port=u.port or 5432)
    return kwargs


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(**_asyncpg_kwargs(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def database(maintenance_url: str) -> Iterator[tuple[str, str]]:
    from sqlalchemy.engine import make_url

    from app.cli.commands import run_migrations

    name = f"st_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(maintenance_url, f'CREATE DATABASE "{name}"'))
    password = "bench-" + secrets.token_hex(8)
    os.environ["STOCK_TRACKER_APP_DB_PASSWORD"] = password
    owner = make_url(maintenance_url).set(drivername="postgresql", database=name)
    app_url = owner.set(username="stock_tracker_app", password=password)
    try:
        run_migrations(owner.render_as_string(hide_password=False))
        yield owner.render_as_string(hide_password=False), app_url.render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(maintenance_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def sandbox() -> Iterator[str]:
    import uvicorn

    from app.sandbox import create_standalone_sandbox_app

    port = free_port()
    config = uvicorn.Config(
        create_standalone_sandbox_app(rate_limits=False), host="127.0.0.1", port=port, log_level="warning"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/sandbox"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def environment(owner_url: str, app_url: str, redis_url: str, sandbox_url: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCK_TRACKER_")}
    env.update(
        {
            "STOCK_TRACKER_ENV": "production",
            "STOCK_TRACKER_DATABASE_URL": app_url,
            "STOCK_TRACKER_MIGRATION_DATABASE_URL": owner_url,
            "STOCK_TRACKER_REDIS_URL": redis_url,
            # This run's own queue: a job another bench's API left in a shared one (its database dropped since)
            # would reach this run's seeding worker and fail there (a tenant that does not exist here).
            "STOCK_TRACKER_QUEUE_NAME": f"arq:bench-api:{secrets.token_hex(4)}",
            "STOCK_TRACKER_JWT_SECRET": secrets.token_urlsafe(48),
            "STOCK_TRACKER_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "STOCK_TRACKER_LOG_LEVEL": "WARNING",
            "STOCK_TRACKER_WB_BASE_URL": f"{sandbox_url}/wb",
            "STOCK_TRACKER_OZON_BASE_URL": f"{sandbox_url}/ozon",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


async def seed(base: str, env: dict[str, str], sandbox_url: str, products: int, key_count: int) -> dict[str, Any]:
    """One organization with a synced catalogue of ``products`` and ``key_count`` API keys."""
    import httpx
    from arq.worker import Worker

    from app.config import load_settings
    from app.domain.apikeys import keys as api_keys
    from app.worker.settings import build_worker_settings

    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        email = f"bench-{secrets.token_hex(4)}@example.com"
        reg = await http.post(
            "/api/v1/auth/register",
            json={"email": email, "password": "bench password 1", "organization_name": "Bench"},
        )
        reg.raise_for_status()
        headers = {"Authorization": f"Bearer {reg.json()['tokens']['access_token']}"}
        tenant_id = reg.json()["tenant"]["id"]
        seller = (
            await http.post(
                f"{sandbox_url}/control/sellers",
                json={"marketplace": "wildberries", "products": products, "warehouses": 3, "seed": 5},
            )
        ).json()
        conn = await http.post(
            "/api/v1/connections",
            json={"marketplace": "wildberries", "name": "Bench", "credentials": seller["credentials"]},
            headers=headers,
        )
        conn.raise_for_status()
        run = await http.post(f"/api/v1/connections/{conn.json()['id']}/syncs", headers=headers)
        run.raise_for_status()
        settings = load_settings({k: v for k, v in env.items() if k.startswith("STOCK_TRACKER_")})
        kwargs = build_worker_settings(settings, serve_metrics=False)
        kwargs.update(burst=True, handle_signals=False, poll_delay=0.05, cron_jobs=[])
        worker = Worker(**kwargs)
        try:
            await worker.main()
        finally:
            await worker.close()
        status = (await http.get(f"/api/v1/syncs/{run.json()['id']}", headers=headers)).json()["status"]
        assert status == "succeeded", status
        page = (await http.get("/api/v1/products", params={"limit": 500}, headers=headers)).json()
        product_ids = [p["id"] for p in page["items"]]
    # Keys beyond the per-organization cap, inserted as the API would store them (a benchmark fixture).
    import asyncpg

    secret = api_keys.hash_secret(settings.api_key_secret, settings.jwt_secret)
    plain = [api_keys.generate() for _ in range(key_count)]
    conn_pg = await asyncpg.connect(**_asyncpg_kwargs(env["STOCK_TRACKER_MIGRATION_DATABASE_URL"]))
    try:
        await conn_pg.executemany(
            "INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, last_four, scopes) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [
                (
                    uuid.uuid4(),
                    uuid.UUID(tenant_id),
                    f"bench {i}",
                    api_keys.key_hash(secret, k),
                    api_keys.display_prefix(k),
                    k[-4:],
                    ["read"],
                )
                for i, k in enumerate(plain)
            ],
        )
    finally:
        await conn_pg.close()
    return {"tenant_id": tenant_id, "keys": plain, "product_ids": product_ids, "owner_headers": headers}


def user_tokens(env: dict[str, str], tenant_id: str, count: int) -> list[str]:
    """Access tokens of ``count`` signed-in users of the organization (the dashboard's path: no quota)."""
    from app.lib.tokens import AccessTokenCodec

    codec = AccessTokenCodec(env["STOCK_TRACKER_JWT_SECRET"], "stock-tracker", "stock-tracker-api", 3600)
    return [codec.encode(uuid.uuid4(), uuid.UUID(tenant_id), "owner") for _ in range(count)]


def warm(base: str, keys: list[str], paths: list[str]) -> None:
    """Every key resolved and every page cached in *every* worker process, before measuring: one pass over the
    keys (each answer checked), then 3 s of wrk over all of them. The pass alone travels on one connection,
    i.e. one of the API's worker processes: the other would meet every key for the first time — a database
    lookup and a ``last_used_at`` write each — inside the measurement. Every server measured here (ours with
    the limiter on and off, the FastAPI twin, the trees of ``--against``) is warmed the same way."""
    import httpx

    with httpx.Client(base_url=base, timeout=30) as http:
        for i, key in enumerate(keys):
            resp = http.get(paths[i % len(paths)], headers={"Authorization": f"Bearer {key}"})
            assert resp.status_code == 200, resp.text
        for path in paths:
            http.get(path, headers={"Authorization": f"Bearer {keys[0]}"})
    wrk(base, paths, keys, duration=3, connections=64)


# ---- main -------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pg",
        default=os.environ.get("STOCK_TRACKER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--redis", default=os.environ.get("STOCK_TRACKER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--keys", type=int, default=400)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--fixed-rate", type=int, default=1000)
    parser.add_argument("--soak", type=int, default=180, help="seconds of mixed load watching RSS (0: skip)")
    parser.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="DIR",
        help="another checkout of the repo (e.g. `git archive main | tar -x -C DIR`): its API serves the cached "
        "list in turn with this one's (repeatable)",
    )
    parser.add_argument("--compare-only", action="store_true", help="with --against: only the tree comparison")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="SECONDS", help="only profile one API worker under wrk (py-spy)"
    )
    args = parser.parse_args()
    if args.compare_only and not args.against:
        parser.error("--compare-only needs --against")
    for tool in ("wrk", "hey"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            print(f"{tool} is missing: apt-get install -y wrk hey", file=sys.stderr)
            return 2

    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "settings": {**vars(args), "workers": 2, "pg": "(redacted)", "redis": args.redis},
    }
    runs, dur, conns = args.runs, args.duration, args.connections
    global REDIS_PID
    REDIS_PID = find_redis_pid(args.redis)
    with database(args.pg) as (owner_url, app_url), sandbox() as sandbox_url:
        env = environment(owner_url, app_url, args.redis, sandbox_url)
        with server(api_cmd(), env, "/health/ready") as (base, proc):
            fixture = asyncio.run(seed(base, env, sandbox_url, args.products, args.keys))
            keys = fixture["keys"]
            product_paths = [f"/api/v1/products/{p}" for p in fixture["product_ids"][:100]]
            warm(base, keys, [LIST_PATH])
            print(f"seeded {len(fixture['product_ids'])} products, {len(keys)} keys; {runs}×{dur}s per figure")
            if args.profile:
                found = profile(base, proc, keys, seconds=args.profile, connections=conns)
                (RESULTS.parent / "api-profile.json").write_text(json.dumps(found, indent=2) + "\n")
                print(f"{found['samples']} samples; inclusive %:")
                for name, pct in found["inclusive_pct"]:
                    print(f"  {pct:5.1f}  {name}")
                print("self %:")
                for name, pct in found["self_pct"]:
                    print(f"  {pct:5.1f}  {name}")
                return 0
            if not args.compare_only:  # --against alone: seed, then only the comparison
                # The floor of this machine in this run: the same server answering /health/live (no auth, no Redis).
                results["health_live_floor"] = median_of(
                    [wrk(base, ["/health/live"], keys, duration=dur, connections=conns, proc=proc) for _ in range(runs)]
                )
                print("floor: /health/live (wrk)          ", results["health_live_floor"])
                results["cached_list"] = median_of(
                    [wrk(base, [LIST_PATH], keys, duration=dur, connections=conns, proc=proc) for _ in range(runs)]
                )
                print("cached list (wrk, limiter on)      ", results["cached_list"])
                users = user_tokens(env, fixture["tenant_id"], len(keys))
                results["cached_list_signed_in_users"] = median_of(
                    [wrk(base, [LIST_PATH], users, duration=dur, connections=conns, proc=proc) for _ in range(runs)]
                )
                print("cached list, user tokens (wrk)     ", results["cached_list_signed_in_users"])
                results["cached_list_fixed_rate"] = median_of(
                    [hey_fixed_rate(base, LIST_PATH, keys, rate=args.fixed_rate, duration=dur) for _ in range(runs)]
                )
                print(f"cached list at {args.fixed_rate} req/s (hey)   ", results["cached_list_fixed_rate"])
                results["health_live_fixed_rate"] = median_of(
                    [
                        hey_fixed_rate(base, "/health/live", keys, rate=args.fixed_rate, duration=dur)
                        for _ in range(runs)
                    ]
                )
                print(f"floor: /health/live at {args.fixed_rate} req/s", results["health_live_fixed_rate"])
                results["product_get_rls"] = median_of(
                    [
                        wrk(
                            base,
                            product_paths,
                            keys,
                            duration=dur,
                            connections=conns,
                            headers={"Cache-Control": "no-cache, no-store"},
                        )
                        for _ in range(runs)
                    ]
                )
                print("product GET via RLS (no cache)     ", results["product_get_rls"])
                results["api_worker_rss_mb"] = rss_mb(proc)
                if args.soak:
                    results["soak"] = soak(base, proc, keys, product_paths, seconds=args.soak, connections=conns)
                    print("soak (RSS per API worker, MiB)     ", results["soak"])
        if args.against:
            results["cached_list_against"] = compare_trees(
                env, args.against, keys, runs=runs, duration=dur, connections=conns
            )
            print("cached list, alternating trees     ", results["cached_list_against"], flush=True)
            users = user_tokens(env, fixture["tenant_id"], len(keys))
            results["cached_list_against_user_tokens"] = compare_trees(
                env, args.against, users, runs=runs, duration=dur, connections=conns
            )
            print("cached list, user tokens, trees    ", results["cached_list_against_user_tokens"], flush=True)
            if args.compare_only:
                RESULTS.parent.mkdir(parents=True, exist_ok=True)
                RESULTS.write_text(json.dumps(results, indent=2) + "\n")
                return 0
        off_env = {**env, "STOCK_TRACKER_RATE_LIMIT_ENABLED": "false"}
        with server(api_cmd(), off_env, "/health/ready") as (base, off_proc):
            warm(base, keys, [LIST_PATH])
            results["cached_list_limiter_off"] = median_of(
                [wrk(base, [LIST_PATH], keys, duration=dur, connections=conns, proc=off_proc) for _ in range(runs)]
            )
            print("cached list (wrk, limiter off)     ", results["cached_list_limiter_off"])
        with server(twin_cmd(), env, "/api/v1/products") as (base, twin_proc):
            warm(base, keys, [LIST_PATH])
            results["fastapi_twin_cached_list"] = median_of(
                [wrk(base, [LIST_PATH], keys, duration=dur, connections=conns, proc=twin_proc) for _ in range(runs)]
            )
            print("FastAPI twin, cached list (wrk)    ", results["fastapi_twin_cached_list"])
    results["limiter_per_check"] = asyncio.run(limiter_costs(args.redis))
    print("limiter per check                  ", json.dumps(results["limiter_per_check"]))
    ours, twin = results["cached_list"], results["fastapi_twin_cached_list"]
    floor, off = results["health_live_floor"], results["cached_list_limiter_off"]
    results["ratios_cpu_per_request"] = {
        # Throughput the API would reach with the cores to itself, relative: floor cost ÷ our cost.
        "cached_list_vs_floor": round(floor["cpu_us_per_req"] / max(ours["cpu_us_per_req"], 1e-9), 2),
        "litestar_vs_fastapi_twin": round(twin["cpu_us_per_req"] / max(ours["cpu_us_per_req"], 1e-9), 2),
        "limiter_on_vs_off": round(off["cpu_us_per_req"] / max(ours["cpu_us_per_req"], 1e-9), 2),
    }
    results["load_average"] = os.getloadavg()
    results["ratios"] = {
        "cached_list_vs_floor_rps": round(ours["rps"] / max(results["health_live_floor"]["rps"], 1), 2),
        "litestar_vs_fastapi_twin_rps": round(ours["rps"] / max(twin["rps"], 1), 2),
        "limiter_on_vs_off_rps": round(ours["rps"] / max(results["cached_list_limiter_off"]["rps"], 1), 2),
        "limits_moving_window_vs_ours_p50": round(
            results["limiter_per_check"]["limits_moving_window_2_limits"]["p50_us"]
            / results["limiter_per_check"]["ours_sliding_counter_2_windows"]["p50_us"],
            2,
        ),
    }
    print("ratios                             ", results["ratios"])
    print("ratios of CPU per request          ", results["ratios_cpu_per_request"], "load", results["load_average"])
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
