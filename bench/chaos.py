"""The fault-injection scenarios of issue 14 §6 at full size, printing their figures (docs/reliability.md).

    python -m bench.chaos [--only NAME ...] [--syncs 100] [--kills 3] [--pg-outage 10] [--redis-outage 30]
                          [--minutes 10]

Scenarios (the same code `tests/chaos/` runs scaled down, in ``tests/chaos/scenarios.py``), against one
private deployment (its own PostgreSQL and Redis on free ports, the sandbox, the API and the worker as
processes):

* ``postgres``: PostgreSQL stopped for ``--pg-outage`` s under API load; the answers during the outage, the
  recovery time, partial writes. Baseline: the same load's rate and read p50 before the outage and after it.
* ``redis``: Redis stopped for ``--redis-outage`` s; what the API answers meanwhile, then whether every
  alert's webhook arrives exactly once. Baseline: the cached read before the outage against the same read
  answered from PostgreSQL during it.
* ``sigterm``: SIGTERM to the API under load; failed requests and exit time. Baseline: SIGTERM to an idle API.
* ``sigkill``: ``--syncs`` manual syncs, the worker SIGKILLed ``--kills`` times; how runs ended (succeeded, the
  killed ones resumed, or abandoned past the resume bound) within lease + 60 s of the last kill, duplicate
  history points, lost or doubled webhooks. Baseline: the same number of syncs with no kill.
* ``soak``: ``--minutes`` of steady mixed load; RSS, file descriptors and server connections each minute.
  Baseline: the same figures before the load starts.

Writes bench/results/chaos.json. Absolute figures on a shared 2-core machine move with whatever else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench._common import report
from tests.chaos import scenarios
from tests.chaos.cluster import Cluster, cluster

ALL = ["postgres", "redis", "sigterm", "sigkill", "soak"]


def _heal(c: Cluster) -> None:
    if not c.postgres.running():
        c.postgres.start()
    if c.redis.proc is None:
        c.redis.start()
    if not c.api.alive():
        c.start_api()
    if not c.worker.alive():
        c.start_worker()


async def _run(c: Cluster, name: str, args: argparse.Namespace) -> dict[str, Any]:
    if name == "postgres":
        return await scenarios.postgres_restart(c, outage_s=args.pg_outage, before_s=5.0, after_s=15.0)
    if name == "redis":
        return await scenarios.redis_outage(c, outage_s=args.redis_outage, deadline_s=180.0)
    if name == "sigterm":
        idle = await scenarios.api_sigterm(c, concurrency=0, before_s=0.5)
        loaded = await scenarios.api_sigterm(c, concurrency=16, before_s=5.0)
        return {"idle_baseline": idle, "under_load": loaded}
    if name == "sigkill":
        baseline = await scenarios.worker_sigkill(c, syncs=args.syncs, kills=0)
        killed = await scenarios.worker_sigkill(c, syncs=args.syncs, kills=args.kills, fail_fast=False)
        return {"no_kill_baseline": baseline, "killed": killed}
    if name == "soak":
        seconds = args.minutes * 60
        return await scenarios.soak(c, seconds=seconds, sample_every=60.0 if seconds >= 120 else seconds / 4)
    raise ValueError(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=ALL, default=ALL)
    parser.add_argument("--syncs", type=int, default=100)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--pg-outage", type=float, default=10.0)
    parser.add_argument("--redis-outage", type=float, default=30.0)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with cluster() as c:
        for name in args.only:
            _heal(c)
            started = time.monotonic()
            print(f"-- {name} …", flush=True)
            try:
                figures[name] = asyncio.run(_run(c, name, args))
            except Exception as exc:  # one scenario's failure is a figure too; the others still run
                figures[name] = {"error": f"{type(exc).__name__}: {exc}"}
            figures[name]["wall_s"] = round(time.monotonic() - started, 1)
            print(scenarios.dump(figures[name]), flush=True)
    report("chaos", figures)


if __name__ == "__main__":
    main()
