"""What the revocation list adds to the request gate (issue 14 §2), beside the gate without it, in one run.

    .venv/bin/python -m bench.revocations [--redis-url URL] [--calls 20000] [--runs 5] [--concurrency 1,32]

The exact hot path of a cached request — the gate's Lua call (windows, usage, cache version) and the cached
entry's GET in one round trip, on the API's pipelining client — three ways, interleaved run by run:

* ``none``: no revocation keys (the gate as it was before the revocation list);
* ``api-key``: one key read (``auth:k:<key>``), what an API-key request adds;
* ``user``: two keys (``auth:v:<user>:<tenant>``, ``auth:s:<session>``), what a signed-in user's request adds.

Per variant and concurrency: µs per call (p50 / p99), calls/s and the Redis server's CPU per call (exact on
the bench's own throw-away redis-server, the default), medians over runs, and each variant's ratio to
``none``. Written to bench/results/revocations.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import uvloop  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from app.domain.apikeys import usage  # noqa: E402
from app.domain.billing.plans import PLANS  # noqa: E402
from app.lib.cache_version import VERSION_LEN, version_key  # noqa: E402
from app.lib.ratelimit import RateLimiter  # noqa: E402
from app.lib.resp import PipelinedRedis  # noqa: E402
from app.lib.tokens import Principal, revocation_checks  # noqa: E402
from app.server import gate  # noqa: E402
from app.server.ratelimit import plan_limits  # noqa: E402
from bench.ratelimit import redis_server  # noqa: E402
from bench.redis_client import measure  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "revocations.json"


async def run(url: str, calls: int, runs: int, levels: list[int]) -> dict[str, Any]:
    admin = Redis.from_url(url)
    await admin.flushdb()
    tenant = uuid.uuid4()
    version = b"0123456789abcdef"[:VERSION_LEN]
    await admin.set(version_key(tenant), version)
    entry_key = f"cache:v1:{{{tenant}}}:products:bench"
    await admin.set(entry_key, version + b"e" * 16 + b"x" * 16384)
    policy = plan_limits(PLANS["self_hosted"]).caller
    policy = type(policy)(policy.name, tuple(type(w)(w.name, 10**9, w.seconds) for w in policy.windows))
    probe = gate.CacheProbe(version_key(tenant), entry_key)
    usage_key = usage.current_usage_key(tenant)
    api_key = Principal(tenant_id=tenant, user_id=None, role="api_key", kind="api_key", key_id=uuid.uuid4())
    user = Principal(tenant_id=tenant, user_id=uuid.uuid4(), role="owner", token_version=7, session_id=uuid.uuid4())
    # Some revocations exist (of others), as in a live system: the keys read here are absent.
    await admin.set(f"auth:v:{uuid.uuid4()}:{tenant}", 9, ex=600)
    resp = PipelinedRedis(url)
    limiter = RateLimiter(resp, prefix="rl:api")

    def bound(principal: Principal | None) -> Any:
        async def call(key: str) -> gate.GateResult:
            # Built per call, as the middleware does for each request.
            checks = revocation_checks(principal) if principal is not None else ((), ())
            result = await gate.pass_gate(
                limiter, key, policy, usage_key=usage_key, monthly_quota=10**12, cache=probe, revocations=checks
            )
            assert not result.revoked
            return result

        return call

    variants = {"none": bound(None), "api-key": bound(api_key), "user": bound(user)}
    per_run: dict[str, dict[int, list[dict[str, float]]]] = {v: {n: [] for n in levels} for v in variants}
    for r in range(runs):
        for n in levels:
            order = list(variants) if r % 2 == 0 else list(variants)[::-1]
            for name in order:
                per_run[name][n].append(await measure(variants[name], n, calls, admin))
        print(f"run {r + 1}/{runs} done", file=sys.stderr)
    await resp.aclose()
    await admin.aclose()
    figures = {
        name: {
            str(n): {metric: statistics.median(s[metric] for s in samples) for metric in samples[0]}
            for n, samples in by_level.items()
        }
        for name, by_level in per_run.items()
    }
    ratios = {
        name: {
            str(n): {
                "p50": round(figures[name][str(n)]["p50_us"] / figures["none"][str(n)]["p50_us"], 3),
                "throughput": round(figures[name][str(n)]["calls_per_s"] / figures["none"][str(n)]["calls_per_s"], 3),
            }
            for n in levels
        }
        for name in variants
        if name != "none"
    }
    return {"calls_per_run": calls, "runs": runs, "figures": figures, "vs_none": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", default="1,32")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    with redis_server(args.redis_url) as url:
        results = uvloop.run(run(url, args.calls, args.runs, levels))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
