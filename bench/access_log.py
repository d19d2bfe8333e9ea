"""What the access log costs per request: the same app, the same request, three arms in one run —

* ``none``: the access-log call patched out (what the API did before it had an access log);
* ``filtered``: log level WARNING, the line is built but dropped by the level filter;
* ``json``: log level INFO, the JSON line written (to /dev/null), as in production.

The request is the cheapest one that passes the request middleware and logs at INFO: ``GET /api/v1/me``
without a token (401 from the auth middleware, no database or Redis), so the log line's share is as large
as it gets; a real read costs 0.5-3 ms. ABBA-ordered rounds, medians of per-round means.

    .venv/bin/python -m bench.access_log [--requests 3000] [--rounds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402

from app.config import Settings  # noqa: E402
from app.observability import logging as logctx  # noqa: E402
from app.observability.logging import configure_logging  # noqa: E402
from app.server import middleware  # noqa: E402
from app.server.app import create_app  # noqa: E402

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/api/v1/me",
    "raw_path": b"/api/v1/me",
    "query_string": b"",
    "root_path": "",
    "headers": [(b"host", b"bench.local"), (b"accept", b"application/json")],
    "client": ("127.0.0.1", 40000),
    "server": ("127.0.0.1", 8000),
}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


async def _run(app: Any, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await app(dict(SCOPE, state={}), _receive, _send)
    return (time.perf_counter() - started) / n * 1e6


def _arm(name: str) -> None:
    """Configure logging (global) for the arm, as production does (loggers cached on first use)."""
    middleware._access_log = (lambda *a, **k: None) if name == "none" else ORIGINAL  # type: ignore[assignment]
    configure_logging("json", "WARNING" if name == "filtered" else "INFO", cache=True)
    logctx.access = structlog.get_logger("stock_tracker.access")  # a fresh proxy: the cache is per proxy


ORIGINAL = middleware._access_log


async def main(requests: int, rounds: int) -> None:
    settings = Settings(
        env="test",
        jwt_secret="bench-" + "x" * 40,
        encryption_keys=Fernet.generate_key().decode(),
        database_url="postgresql://u:p@127.0.0.1:1/none",
        redis_url="redis://127.0.0.1:1/0",
        log_format="json",
    )
    app = create_app(settings)
    devnull = open(os.devnull, "w")  # noqa: SIM115 (for the whole run)
    real_stderr = sys.stderr
    sys.stderr = devnull  # the JSON arm writes here (PrintLoggerFactory binds sys.stderr when configured)
    arms = ["none", "filtered", "json"]
    results: dict[str, list[float]] = {a: [] for a in arms}
    try:
        for a in arms:  # warm-up
            _arm(a)
            await _run(app, 300)
        for r in range(rounds):
            order = arms if r % 2 == 0 else list(reversed(arms))
            for a in order:
                _arm(a)
                results[a].append(await _run(app, requests))
    finally:
        sys.stderr = real_stderr
        middleware._access_log = ORIGINAL
        devnull.close()
    base = statistics.median(results["none"])
    print(f"access log cost, GET /api/v1/me → 401, {requests} requests × {rounds} rounds (µs per request, median)")
    for a in arms:
        m = statistics.median(results[a])
        print(f"  {a:9s} {m:8.1f} µs   {m - base:+7.1f} µs vs none   ({m / base:.3f}×)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
