"""The request gate's Redis round trip on two clients, side by side in one run (issue 16 §3).

    .venv/bin/python bench/redis_client.py [--redis-url URL] [--calls 20000] [--runs 3]
                                          [--concurrency 1,32,128] [--entry-bytes 16384]

The exact hot path of a cached API-key request: the gate's Lua script (the limiter's burst + minute windows,
the month's usage count, the tenant's cache version) and the cache entry's GET, sent together in one round
trip, by N concurrent callers (each its own API key, as under load) against one Redis. Two clients:

* ``resp``: the hand-written pipelining client (``app/lib/resp.py``): one connection per process, every
  command issued in one turn of the event loop leaves in one write; GET + EVALSHA go as one ``execute_many``.
* ``redis-py``: ``redis.asyncio`` with the hiredis parser, the pooled client the API builds
  (``app.lib.redis.redis_client``: 2 s socket timeouts, health check every 30 s), GET + EVALSHA in one
  ``pipeline(transaction=False)``; and ``redis-py-bare``, the same without timeouts or health checks
  (``Redis.from_url(url)``), to show what the client's own settings cost.

Per client and concurrency: µs per call (p50 / p99, each call timed from its caller's side), calls/s
(all calls / wall time) and the Redis server's CPU time per call (INFO cpu; exact only on the bench's own
redis-server, the default). Runs are interleaved (resp, redis-py, resp, ...) and the medians printed, with the
ratio redis-py / resp. Without a URL a throw-away redis-server is started on loopback (as bench/ratelimit.py).
The event loop is uvloop, as uvicorn's (``--loop asyncio`` for the stdlib one). JSON goes to
bench/results/redis_client.json. Absolute figures on a shared 2-core machine move with whatever
else runs — the Redis server included, which shares the cores with the client: quote the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import hiredis  # noqa: E402
import uvloop  # noqa: E402
from redis.asyncio import Redis  # noqa: E402
from redis.exceptions import NoScriptError  # noqa: E402

from app.domain.apikeys import usage  # noqa: E402
from app.domain.billing.plans import PLANS  # noqa: E402
from app.lib.cache_version import VERSION_LEN, version_key  # noqa: E402
from app.lib.ratelimit import HIT, RateLimiter  # noqa: E402
from app.lib.redis import redis_client  # noqa: E402
from app.lib.resp import PipelinedRedis  # noqa: E402
from app.server import gate  # noqa: E402
from app.server.ratelimit import plan_limits  # noqa: E402
from bench.ratelimit import redis_server  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "redis_client.json"
Gate = Callable[[str], Awaitable[gate.GateResult]]


async def resp_gate(limiter: RateLimiter, *args: Any, **kwargs: Any) -> gate.GateResult:
    return await gate.pass_gate(limiter, *args, **kwargs)


async def redispy_gate(
    limiter: RateLimiter, caller_key: str, policy: Any, *, usage_key: str, monthly_quota: int, cache: gate.CacheProbe
) -> gate.GateResult:
    """The gate on redis-py: the same script and GET in one pipeline (transaction=False)."""
    extra_keys = (usage_key, cache.version_key, gate.VERSION_SEQUENCE_KEY)
    # No revocation keys (b"0"), then usage and cache, as gate.pass_gate lays them out.
    extra_args = (b"0", b"1", str(monthly_quota).encode(), str(usage.RETENTION_SECONDS).encode(), b"1")
    compiled, keys, argv = limiter.script_call(HIT, caller_key, policy, 1, extra_keys, extra_args)
    pipe = limiter.redis.pipeline(transaction=False)  # type: ignore[attr-defined]
    pipe.execute_command("GET", cache.entry_key)
    pipe.execute_command("EVALSHA", gate._GATE.sha, len(keys), *keys, *argv)
    entry, reply = await pipe.execute(raise_on_error=False)
    if isinstance(reply, NoScriptError):
        reply = await limiter.redis.execute_command("EVAL", gate._GATE.source, len(keys), *keys, *argv)
    for r in (entry, reply):
        if isinstance(r, Exception):
            raise r
    width = 2 + 2 * len(compiled.windows)
    used, over, version, _revoked = reply[width : width + 4]
    return gate.GateResult(limiter.decide(compiled, reply[:width], HIT, 1), int(used), bool(over), version, entry)


async def redis_cpu_s(admin: Redis) -> float:
    info = await admin.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def measure(call: Gate, concurrency: int, calls: int, admin: Redis) -> dict[str, float]:
    """``calls`` gate calls spread over ``concurrency`` callers, each with its own key; per-call latencies,
    throughput, and the Redis server's CPU time per call."""
    per_caller = max(1, calls // concurrency)
    samples: list[int] = []

    async def caller(i: int, count: int) -> None:
        key = f"k:bench-{i}"
        out = []
        for _ in range(count):
            start = time.perf_counter_ns()
            result = await call(key)
            out.append(time.perf_counter_ns() - start)
            assert result.caller.allowed and result.entry is not None, "every call must be an admitted cache hit"
        samples.extend(out)

    # warm-up (connections, the script cache, the limiter's caches), not counted
    await asyncio.gather(*(caller(i, min(50, per_caller)) for i in range(concurrency)))
    samples.clear()
    cpu = await redis_cpu_s(admin)
    started = time.perf_counter()
    await asyncio.gather(*(caller(i, per_caller) for i in range(concurrency)))
    wall = time.perf_counter() - started
    cpu = await redis_cpu_s(admin) - cpu
    samples.sort()
    return {
        "p50_us": round(samples[len(samples) // 2] / 1000, 1),
        "p99_us": round(samples[int(len(samples) * 0.99)] / 1000, 1),
        "calls_per_s": round(len(samples) / wall),
        "redis_cpu_us": round(cpu / len(samples) * 1e6, 1),
    }


async def run(url: str, calls: int, runs: int, levels: list[int], entry_bytes: int) -> dict[str, Any]:
    admin = Redis.from_url(url)
    await admin.flushdb()
    tenant = uuid.uuid4()
    version = b"0123456789abcdef"[:VERSION_LEN]
    await admin.set(version_key(tenant), version)
    entry_key = f"cache:v1:{{{tenant}}}:products:bench"
    await admin.set(entry_key, version + b"e" * 16 + b"x" * entry_bytes)
    # The self-hosted plan's windows, with limits high enough that no timed call is refused.
    policy = plan_limits(PLANS["self_hosted"]).caller
    policy = type(policy)(policy.name, tuple(type(w)(w.name, 10**9, w.seconds) for w in policy.windows))
    probe = gate.CacheProbe(version_key(tenant), entry_key)
    usage_key = usage.current_usage_key(tenant)

    resp = PipelinedRedis(url)
    pooled = redis_client(url)
    bare = Redis.from_url(url)
    clients: dict[str, tuple[Callable[..., Awaitable[gate.GateResult]], RateLimiter]] = {
        "resp": (resp_gate, RateLimiter(resp, prefix="rl:api")),
        "redis-py": (redispy_gate, RateLimiter(pooled, prefix="rl:api")),
        "redis-py-bare": (redispy_gate, RateLimiter(bare, prefix="rl:api")),
    }

    def bound(name: str) -> Gate:
        fn, limiter = clients[name]
        return lambda key: fn(limiter, key, policy, usage_key=usage_key, monthly_quota=10**12, cache=probe)

    per_run: dict[str, dict[int, list[dict[str, float]]]] = {name: {n: [] for n in levels} for name in clients}
    for r in range(runs):
        for n in levels:
            for name in clients:
                per_run[name][n].append(await measure(bound(name), n, calls, admin))
        print(f"run {r + 1}/{runs} done", file=sys.stderr)

    figures = {
        name: {
            str(n): {metric: statistics.median(s[metric] for s in samples) for metric in samples[0]}
            for n, samples in by_level.items()
        }
        for name, by_level in per_run.items()
    }
    connections = (await admin.info("clients"))["connected_clients"]
    info = await admin.info("server")
    await resp.aclose()
    await pooled.aclose()
    await bare.aclose()
    await admin.aclose()
    return {
        "calls_per_run": calls,
        "runs": runs,
        "entry_bytes": entry_bytes,
        "redis": {"url_kind": url.split(":")[0], "version": info.get("redis_version")},
        "python": platform.python_version(),
        "hiredis": hiredis.__version__,
        "cpus": os.cpu_count(),
        "connected_clients_at_end": connections,
        "figures": figures,
        "ratios_resp_over_redis_py": {
            str(n): {
                "p50_speedup": round(figures["redis-py"][str(n)]["p50_us"] / figures["resp"][str(n)]["p50_us"], 2),
                "p99_speedup": round(figures["redis-py"][str(n)]["p99_us"] / figures["resp"][str(n)]["p99_us"], 2),
                "throughput": round(
                    figures["resp"][str(n)]["calls_per_s"] / figures["redis-py"][str(n)]["calls_per_s"], 2
                ),
            }
            for n in levels
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default=os.environ.get("STOCK_TRACKER_BENCH_REDIS_URL"))
    parser.add_argument("--calls", type=int, default=20_000, help="timed calls per client, concurrency and run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", default="1,32,128")
    parser.add_argument("--entry-bytes", type=int, default=16_384, help="size of the cached page")
    parser.add_argument(
        "--loop", choices=["uvloop", "asyncio"], default="uvloop", help="uvicorn runs the API on uvloop"
    )
    args = parser.parse_args()
    levels = [int(n) for n in args.concurrency.split(",")]
    with redis_server(args.redis_url) as url:
        loop_factory = uvloop.new_event_loop if args.loop == "uvloop" else None
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            result = runner.run(run(url, args.calls, args.runs, levels, args.entry_bytes))
        result["loop"] = args.loop
    print(f"{'client':<14}{'callers':>8}{'p50 µs':>10}{'p99 µs':>10}{'calls/s':>10}{'Redis CPU µs/call':>19}")
    for n in levels:
        for name, by_level in result["figures"].items():
            s = by_level[str(n)]
            print(f"{name:<14}{n:>8}{s['p50_us']:>10}{s['p99_us']:>10}{s['calls_per_s']:>10}{s['redis_cpu_us']:>19}")
    print("\nresp vs redis-py (> 1: resp faster)")
    for n, r in result["ratios_resp_over_redis_py"].items():
        print(f"  {n:>4} callers: p50 {r['p50_speedup']}×  p99 {r['p99_speedup']}×  calls/s {r['throughput']}×")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
