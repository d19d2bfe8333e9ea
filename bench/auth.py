"""Password checks off the event loop (issue 14 §3): /health/live latency while 40 logins are checked, with
argon2 on a bounded thread pool (the API as configured) beside the same app hashing on the event loop
(``password_hash_workers=0``, the old behaviour) in the same run; and login latency for a known address with a
wrong password beside an unknown address (they must cost the same).

    .venv/bin/python -m bench.auth [--logins 40] [--runs 3]

The API runs in-process under uvicorn on loopback against a freshly migrated database; runs alternate
between the two configurations (ABAB) and the medians over runs are printed and written to
bench/results/auth.json. Absolute figures move with the machine's load; compare the two columns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import msgspec  # noqa: E402
import uvicorn  # noqa: E402

from app.config import Settings  # noqa: E402
from bench._common import bench_settings, report  # noqa: E402
from bench.api import free_port  # noqa: E402

PASSWORD = "correct horse battery"


@contextlib.contextmanager
def served(settings: Settings) -> Iterator[str]:
    from app.server.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def burst(base: str, logins: int) -> dict[str, float]:
    """``logins`` concurrent logins (unknown addresses: the same argon2 work) while /health/live is probed."""
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=httpx.Limits(max_connections=logins + 4)) as http:
        await http.get("/health/live")
        started = time.perf_counter()
        task = asyncio.ensure_future(  # noqa: RUF006 - awaited below (task.result())
            asyncio.gather(
                *(
                    http.post(
                        "/api/v1/auth/login",
                        json={"email": f"nobody-{secrets.token_hex(6)}@example.com", "password": "x" * 12},
                    )
                    for _ in range(logins)
                )
            )
        )
        probes: list[float] = []
        while not task.done():
            t0 = time.perf_counter()
            await http.get("/health/live")
            probes.append((time.perf_counter() - t0) * 1000)
        elapsed = time.perf_counter() - started
        statuses = [r.status_code for r in task.result()]
    return {
        "burst_s": round(elapsed, 2),
        "logins_per_s": round(logins / elapsed, 1),
        "health_probes": len(probes),
        "health_p50_ms": round(_pct(probes, 0.5), 1),
        "health_p99_ms": round(_pct(probes, 0.99), 1),
        "health_max_ms": round(max(probes), 1),
        "refused_503": statuses.count(503),
    }


async def alike(base: str, rounds: int) -> dict[str, float]:
    """Sequential logins, interleaved: a known address with a wrong password, and an unknown address."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        email = f"known-{secrets.token_hex(6)}@example.com"
        reg = await http.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "organization_name": "Bench"}
        )
        reg.raise_for_status()
        known, unknown = [], []
        for i in range(rounds):
            for target, bucket in ((email, known), (f"nobody-{secrets.token_hex(6)}@example.com", unknown)):
                t0 = time.perf_counter()
                # A new wrong password each time, a fresh address for the lockout's pair key every 4 tries.
                await http.post(
                    "/api/v1/auth/login",
                    json={"email": target, "password": f"wrong-{i}-{secrets.token_hex(2)}"},
                    headers={"X-Forwarded-For": f"198.51.100.{i // 4 + 1}"},
                )
                bucket.append((time.perf_counter() - t0) * 1000)
    return {
        "known_wrong_password_p50_ms": round(statistics.median(known), 1),
        "unknown_address_p50_ms": round(statistics.median(unknown), 1),
    }


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    async with bench_settings(password_hash_queue=max(64, args.logins)) as base_settings:
        print(f"argon2 pool: {args.workers} thread(s); baseline: on the event loop", flush=True)
        pool = msgspec.structs.replace(base_settings, password_hash_workers=args.workers)
        inline = msgspec.structs.replace(base_settings, password_hash_workers=0)
        figures: dict[str, list[dict[str, float]]] = {"pool": [], "on_the_loop": []}
        for _ in range(args.runs):
            for name, settings in (("pool", pool), ("on_the_loop", inline)):
                with served(settings) as base:
                    figures[name].append(await burst(base, args.logins))
        with served(pool) as base:
            timing = await alike(base, args.alike_rounds)
    out: dict[str, Any] = {"logins": args.logins, "runs": args.runs}
    for name, runs in figures.items():
        out[name] = _median(runs)
    out["login_timing"] = timing
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--alike-rounds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=Settings().password_hash_workers, help="the pool's threads")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    figures = asyncio.run(main_async(args))
    report("auth", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
