"""Where the cached list's p99 under wrk comes from (issue 13 §5): the load generator's own CPU, the API
workers' waits for a CPU, and closed-loop queueing — with the /health/live floor in the same run.

    python -m bench.api_queueing [--pg …] [--redis …] [--duration 6] [--rounds 2]

The set-up is bench/api.py's (fresh database, sandbox, `stock-tracker api --workers 2`, 400 API keys). For each
wrk connection count (64 … 1), alternating the cached list and the floor, it prints per run:

* ``rps``, ``avg_ms`` and ``c_over_x_ms`` (Little's law for a closed loop: connections ÷ throughput — when
  the mean latency equals it, the latency is the queue the connection count builds, not a slow request),
  ``p50_ms``, ``p99_ms``;
* ``api_cores`` / ``api_us_per_req``: the API workers' CPU (from the kernel's ``/proc/<pid>/task/*/schedstat``);
* ``api_wait_share``: of the time the API workers were runnable, the share spent waiting for a CPU
  (schedstat's run-queue wait) — contention for the cores, whoever holds them;
* ``wrk_cores`` / ``wrk_us_per_req``: the load generator's own CPU (``getrusage`` of the child);
* ``other_cores``: the rest of the machine's busy time (PostgreSQL, Redis, anything else running).

Then an open loop below capacity (``hey -q`` at fixed rates, bench/api.py's ``hey_fixed_rate``), where the
latency is the request's and not the queue's. Medians of ``--rounds`` go to bench/results/api-queueing.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import api as b  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "api-queueing.json"
TICK = os.sysconf("SC_CLK_TCK")


def _children(proc: subprocess.Popen[bytes]) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def schedstat(pids: list[int]) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one), over every thread of ``pids``."""
    on = wait = 0
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                ran, waited, _ = (int(x) for x in (task / "schedstat").read_text().split())
            except (OSError, ValueError):
                continue
            on += ran
            wait += waited
    return on / 1e9, wait / 1e9


def machine_busy_s() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICK  # all but idle and iowait


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    base: str, path: str, keys: list[str], *, connections: int, duration: int, proc: subprocess.Popen[bytes]
) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(b._lua([path], keys, {}))
    workers = _children(proc)
    api_on0, api_wait0 = schedstat(workers)
    busy0, gen0, t0 = machine_busy_s(), children_cpu_s(), time.perf_counter()
    threads = 2 if connections > 1 else 1
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script.name, base],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration + 60,
        ).stdout
    finally:
        os.unlink(script.name)
    wall = time.perf_counter() - t0
    busy, gen = machine_busy_s() - busy0, children_cpu_s() - gen0
    api_on1, api_wait1 = schedstat(workers)
    api_on, api_wait = api_on1 - api_on0, api_wait1 - api_wait0

    def ms(label: str) -> float:
        return b._ms(re.search(label + r"\s+(\S+)", out).group(1))  # type: ignore[union-attr]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    n = max(rps * duration, 1)
    return {
        "rps": round(rps),
        "avg_ms": round(ms("Latency"), 2),
        "c_over_x_ms": round(1000 * connections / max(rps, 1), 2),
        "p50_ms": round(ms(r"\s50%"), 2),
        "p99_ms": round(ms(r"\s99%"), 2),
        "api_cores": round(api_on / wall, 2),
        "api_us_per_req": round(1e6 * api_on / n, 1),
        "api_wait_share": round(api_wait / max(api_on + api_wait, 1e-9), 2),
        "wrk_cores": round(gen / wall, 2),
        "wrk_us_per_req": round(1e6 * gen / n, 1),
        "other_cores": round((busy - api_on - gen) / wall, 2),
        "load1": float(Path("/proc/loadavg").read_text().split()[0]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--pg",
        default=os.environ.get("STOCK_TRACKER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--redis", default=os.environ.get("STOCK_TRACKER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, nargs="+", default=[64, 32, 16, 8, 4, 2, 1])
    parser.add_argument("--rates", type=int, nargs="+", default=[150, 300, 600], help="hey's fixed offered loads")
    args = parser.parse_args()
    for tool in ("wrk", "hey"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            print(f"{tool} is missing: apt-get install -y wrk hey", file=sys.stderr)
            return 2
    runs: dict[str, list[dict[str, float]]] = {}
    with b.database(args.pg) as (owner_url, app_url), b.sandbox() as sandbox_url:
        env = b.environment(owner_url, app_url, args.redis, sandbox_url)
        with b.server(b.api_cmd(), env, "/health/ready") as (base, proc):
            keys = asyncio.run(b.seed(base, env, sandbox_url, 200, 400))["keys"]
            b.warm(base, keys, [b.LIST_PATH])
            b.wrk(base, [b.LIST_PATH], keys, duration=5, connections=64)  # every key's first use, in both workers
            for _ in range(args.rounds):
                for c in args.connections:
                    for name, path in (("list", b.LIST_PATH), ("floor", "/health/live")):
                        got = run_wrk(base, path, keys, connections=c, duration=args.duration, proc=proc)
                        runs.setdefault(f"{name} wrk c={c}", []).append(got)
                        print(f"{name:5} wrk c={c:<3}", json.dumps(got), flush=True)
            for rate in args.rates:
                for name, path in (("list", b.LIST_PATH), ("floor", "/health/live")):
                    gen0 = children_cpu_s()
                    got: dict[str, Any] = b.hey_fixed_rate(base, path, keys, rate=rate, duration=args.duration)
                    got["hey_cores"] = round((children_cpu_s() - gen0) / args.duration, 2)
                    runs.setdefault(f"{name} hey {rate}/s", []).append(got)
                    print(f"{name:5} hey {rate}/s", json.dumps(got), flush=True)
    medians = {k: {f: statistics.median(r[f] for r in v) for f in v[0]} for k, v in runs.items()}
    print("\nmedians:")
    for k, v in medians.items():
        print(f"  {k:18}", json.dumps(v))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"medians": medians, "runs": runs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
