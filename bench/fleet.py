"""A fleet of sellers through one or more worker processes: N sandbox sellers of ~1 000 variants each, every
connection's first sync enqueued at once, ``--workers`` arq worker processes (the production settings) until
the queue is empty.

    python -m bench.fleet [--sellers 1000] [--products 590] [--workers 1] [--max-jobs N] [--baseline 20]
                          [--latency-ms 0] [--latency-jitter-ms 0] [--dup-check]

(``BENCH_FLEET_PROFILE=/tmp/fleet.prof`` writes a cProfile of each worker process to ``/tmp/fleet.prof.<pid>``.)

Issue 13 §3 targets on the 2-core machine: 1 000 × 1 000 with one worker → queue empty ≤ 120 s (200 × 1 000
≤ 25 s), worker peak RSS ≤ 300 MB; two workers → ≥ 1.7× the throughput of one, no duplicate sync of a
connection. The sandbox runs as its own process (``stock-tracker sandbox --no-rate-limits``) and every
worker is a process of its own (``python -m bench.fleet --child``), so each one's peak RSS and CPU time is
its own. ``--latency-ms`` (and ``--latency-jitter-ms``) makes every sandbox request of every seller take that
long (plus a uniform draw up to the jitter), as a real marketplace's answers do; rate limits stay off.
Same-run baseline: the first ``--baseline`` sellers synced one at a time (max_jobs 1, in this
process), extrapolated to the fleet.

Figures:

* ``queue_empty_s``: from a worker's start (its imports done) until it exits (arq burst mode: the queue is
  empty and nothing runs), the longest of the workers — the syncs and everything they enqueue (alert
  evaluation, events, deliveries). ``workers_spawn_to_exit_s`` adds the processes' start-up.
* ``syncs_per_s`` / ``stock_rows_per_s``: the fleet's runs (and the stock rows they wrote) over the span from
  the first run's start to the last run's end; ``sync_seconds_p50/p95/max``: each run's own duration.
* ``postgresql_time_share``: the bench database's statement time (``pg_stat_database.active_time``, summed
  over its backends) ÷ (that + the worker processes' CPU time) — how much of the work is PostgreSQL's.
* ``cpu_s_by_program`` / ``cpu_s_per_sync`` / ``cores_busy_share``: CPU seconds the worker processes, the
  PostgreSQL server (its live processes and what its exited backends left to the postmaster), the sandbox
  and Redis used during the fleet, read from ``/proc``; per run; and their sum ÷ (queue-empty time × cores).
  A share near 1 means the host's cores were the limit, whatever the concurrency — and ``cpu_s_per_sync``
  × runs ÷ cores is then the floor of the queue-empty time on this host. (Host-wide for PostgreSQL and
  Redis: read them on a quiet machine.)
* ``worker_processes``: each worker's own figures, with where its memory went (sampled every 0.25 s):
  ``rss_before_start_mb`` (imports done), ``rss_first_job_mb`` (start-up done), ``rss_peak_mb`` with
  ``jobs_in_flight_at_peak``, once the queue is empty and the worker has idled a trim interval (untimed: the
  heap trim the last jobs scheduled has run) ``rss_idle_mb``, and once it has closed ``rss_end_mb``,
  ``rss_after_gc_collect_mb`` (with
  ``gc_unreachable_at_end``: garbage in reference cycles still held) and ``rss_after_malloc_trim_mb`` (freed
  heap glibc had not given back). ``BENCH_FLEET_TRACEMALLOC=/tmp/fleet.tm`` also writes the tracemalloc
  snapshot with the most traced memory to ``/tmp/fleet.tm.<pid>`` (slow: for where, not for timings).
  ``BENCH_FLEET_HOLDINGS=/tmp/fleet.h`` adds what the worker holds at its first job, idle once the queue is
  empty (its pool still open) and at the end: live objects by type, SQLAlchemy's compiled cache and asyncpg's
  statement caches, pymalloc's arenas (``sys._debugmallocstats``, kept in ``/tmp/fleet.h.<pid>.<when>.pymalloc``)
  and glibc's heap (``mallinfo2``); with tracemalloc on too, a snapshot at each of the three to diff.
* ``--dup-check`` enqueues every connection twice under two job ids (as a schedule tick and a manual
  trigger would): ``overlapping_runs_of_one_connection`` counts runs of one connection that ran at the same
  time (must be 0: the per-connection lock holds across processes); both runs of a connection run, one
  after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from app.worker.memory import TRIM_INTERVAL_S
from bench._common import ROOT, add_wb_connection, bench_settings, free_port, peak_rss_mb, report

_SETTINGS_ENV = "BENCH_FLEET_SETTINGS"


def _worker_kwargs(settings: Any, max_jobs: int) -> dict[str, Any]:
    from app.worker.settings import build_worker_settings

    kwargs = build_worker_settings(settings, serve_metrics=False)
    kwargs.update(burst=True, handle_signals=False, cron_jobs=[], max_jobs=max_jobs)
    return kwargs


def _current_rss_mb() -> float:
    """The resident set now (``/proc/self/status`` VmRSS), not the peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _MemoryProbe:
    """Bench-only: where a worker process's resident set goes. Samples the RSS every 0.25 s with the number of
    jobs in flight: before the worker starts (imports done), when its first job runs (start-up done), at its
    peak (and the jobs in flight then) and at the end. With ``BENCH_FLEET_TRACEMALLOC=<file>``, tracemalloc
    runs from the child's start and the snapshot with the most traced memory is written to ``<file>.<pid>``
    (slow: for finding where the memory goes, not for timings)."""

    def __init__(self) -> None:
        self.figures: dict[str, Any] = {"rss_before_start_mb": round(_current_rss_mb())}
        self.traced_best = 0
        self.snapshot_path = os.environ.get("BENCH_FLEET_TRACEMALLOC")
        self.holdings_path = os.environ.get("BENCH_FLEET_HOLDINGS")

    async def run(self, worker: Any) -> None:
        import tracemalloc

        peak, in_flight_max, last_snap = 0.0, 0, 0.0
        while True:
            in_flight = sum(1 for t in worker.job_tasks.values() if not t.done())
            rss = _current_rss_mb()
            if in_flight and "rss_first_job_mb" not in self.figures:
                self.figures["rss_first_job_mb"] = round(rss)
                if self.holdings_path:
                    self.figures["holdings_first_job"] = _holdings(worker, f"{self.holdings_path}.{os.getpid()}.start")
            in_flight_max = max(in_flight_max, in_flight)
            if rss > peak:
                peak = rss
                self.figures.update(rss_peak_mb=round(rss), jobs_in_flight_at_peak=in_flight)
            self.figures.update(jobs_in_flight_max=in_flight_max, rss_last_sample_mb=round(rss))
            if self.snapshot_path and tracemalloc.is_tracing() and time.monotonic() - last_snap > 5:
                traced = tracemalloc.get_traced_memory()[0]
                if traced > self.traced_best * 1.03:
                    self.traced_best = traced
                    tracemalloc.take_snapshot().dump(f"{self.snapshot_path}.{os.getpid()}")
                    last_snap = time.monotonic()
                    self.figures["tracemalloc_snapshot_mb"] = round(traced / 2**20)
            await asyncio.sleep(0.25)


async def _drain(settings: Any, max_jobs: int, probe: _MemoryProbe | None = None) -> tuple[Any, float]:
    """Run one worker in this process until the queue is empty; the worker and its wall seconds."""
    from arq.worker import Worker

    worker = Worker(**_worker_kwargs(settings, max_jobs))
    sampler = asyncio.create_task(probe.run(worker)) if probe else None
    started = time.perf_counter()
    try:
        await worker.main()
        wall = time.perf_counter() - started
        if probe:
            # Idle a moment, as a worker waits for its next job (not timed): the heap trim that the burst's
            # last jobs scheduled runs (app/worker/memory.py). Its job context is still open (the pool's
            # connections and their statement caches).
            await asyncio.sleep(TRIM_INTERVAL_S + 0.25)
            probe.figures["rss_idle_mb"] = round(_current_rss_mb())
            if probe.holdings_path:
                probe.figures["holdings_idle"] = _holdings(worker, f"{probe.holdings_path}.{os.getpid()}.idle")
    finally:
        closing = time.perf_counter()
        await worker.close()
        if sampler:
            sampler.cancel()
    return worker, wall + time.perf_counter() - closing


def _pymalloc_stats(path: str) -> dict[str, Any]:
    """pymalloc's arenas (``sys._debugmallocstats``, written to the C stderr: kept in ``path``). Nothing while
    tracemalloc traces: its hooks stand in front of pymalloc then."""
    import sys

    saved = os.dup(2)
    with open(path, "w") as f:
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    wanted = {
        "# arenas allocated current": "arenas_current",
        "# arenas highwater mark": "arenas_highwater",
        "# bytes in allocated blocks": "allocated_blocks_mb",
        "# bytes in available blocks": "available_blocks_mb",
        "# bytes lost to pool headers": "pool_headers_mb",
        "# bytes lost to quantization": "quantization_mb",
        "Total": "arenas_total_mb",
    }
    stats: dict[str, Any] = {}
    with open(path) as f:
        for line in f:
            name, _, value = line.rpartition("=")
            key = wanted.get(name.strip())
            if "unused pools" in name:
                key = "unused_pools_mb"
            if key and key not in stats and value.strip():  # the first "Total" is the arenas'
                number = int(value.strip().replace(",", ""))
                stats[key] = number if key in ("arenas_current", "arenas_highwater") else round(number / 2**20, 1)
    return stats


def _glibc_heap() -> dict[str, Any]:
    """glibc's ``mallinfo2``: the heap's bytes in use and free (what ``malloc_trim`` could not give back is in
    pages with live neighbours), and the mapped blocks (above the mmap threshold)."""
    import ctypes

    class _Mallinfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                *("arena", "ordblks", "smblks", "hblks", "hblkhd"),
                *("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"),
            )
        ]

    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except AttributeError:
        return {}
    mallinfo2.restype = _Mallinfo2
    info = mallinfo2()
    return {
        "heap_mb": round(info.arena / 2**20, 1),
        "heap_in_use_mb": round(info.uordblks / 2**20, 1),
        "heap_free_mb": round(info.fordblks / 2**20, 1),
        "mapped_blocks": info.hblks,
        "mapped_mb": round(info.hblkhd / 2**20, 1),
    }


def _holdings(worker: Any, prefix: str) -> dict[str, Any]:
    """Bench-only, with ``BENCH_FLEET_HOLDINGS=<prefix>``: what the worker holds now — live objects by type,
    the caches a worker fills as it runs (SQLAlchemy's compiled statements, asyncpg's prepared statements per
    open connection), pymalloc's arenas, glibc's heap; with ``BENCH_FLEET_TRACEMALLOC`` also the traced Python
    memory and its snapshot (``<prefix>.<pid>.<when>``, to diff the first job's against the end's)."""
    import collections
    import gc
    import tracemalloc

    import asyncpg

    types = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    figures: dict[str, Any] = {
        "rss_mb": round(_current_rss_mb()),
        "gc_objects": sum(types.values()),
        "gc_objects_by_type_top": dict(types.most_common(15)),
    }
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(prefix)
        figures["traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
    engine = worker.ctx.get("engine")
    if engine is not None:
        cache = engine.sync_engine._compiled_cache
        figures["sqlalchemy_compiled_cache"] = {"entries": len(cache), "capacity": cache.capacity}
    # asyncpg's prepared statements, per open connection (its LRU of up to 100 by default).
    figures["asyncpg_statement_cache_per_connection"] = [
        len(o._stmt_cache) for o in gc.get_objects() if isinstance(o, asyncpg.Connection)
    ]
    figures["pymalloc"] = _pymalloc_stats(f"{prefix}.pymalloc")
    figures["glibc"] = _glibc_heap()
    return figures


def _what_the_end_holds(worker: Any) -> dict[str, Any]:
    """Bench-only, once the queue is empty: the RSS, then after a full collection (garbage in reference cycles
    that was still held), then after glibc's ``malloc_trim(0)`` (freed heap not yet given back)."""
    import ctypes
    import gc

    figures: dict[str, Any] = {"rss_end_mb": round(_current_rss_mb()), "gc_counts_end": list(gc.get_count())}
    figures["gc_collections"] = [g["collections"] for g in gc.get_stats()]
    figures["gc_unreachable_at_end"] = gc.collect()
    figures["rss_after_gc_collect_mb"] = round(_current_rss_mb())
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    figures["rss_after_malloc_trim_mb"] = round(_current_rss_mb())
    if path := os.environ.get("BENCH_FLEET_HOLDINGS"):
        figures["holdings_end"] = _holdings(worker, f"{path}.{os.getpid()}.end")
    return figures


async def _child(max_jobs: int) -> None:
    """One worker process (``--child``): drain the queue, then print its own figures as one JSON line."""
    import msgspec

    from app.config import Settings

    settings = msgspec.json.decode(os.environ[_SETTINGS_ENV], type=Settings)
    probe = _MemoryProbe()
    worker, wall = await _drain(settings, max_jobs, probe)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "jobs_complete": worker.jobs_complete,
        "jobs_retried": worker.jobs_retried,
        "jobs_failed": worker.jobs_failed,
        **probe.figures,
        **_what_the_end_holds(worker),
    }
    print("FLEET-CHILD " + json.dumps(figures), flush=True)


async def _enqueue(settings: Any, pairs: list[tuple[str, str]], suffixes: list[str]) -> None:
    from arq import create_pool

    from app.lib.redis import arq_settings

    pool = await create_pool(arq_settings(settings.redis_url), default_queue_name=settings.queue_name)
    for suffix in suffixes:
        for tid, cid in pairs:
            await pool.enqueue_job(
                "sync.connection",
                tenant_id=tid,
                connection_id=cid,
                trigger="scheduled",
                _job_id=f"sync:{cid}:{suffix}",
            )
    await pool.aclose()


async def _active_ms(settings: Any, database: str) -> float:
    """The database's statement time so far (PostgreSQL 14+), flushed statistics only."""
    import asyncpg

    conn = await asyncpg.connect(settings.migration_database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        value = await conn.fetchval("SELECT active_time FROM pg_stat_database WHERE datname = $1", database)
        return float(value or 0.0)
    finally:
        await conn.close()


def _proc_cpu(pid: int, *, children: bool = False) -> float:
    """CPU seconds of one process from /proc (with its reaped children's when ``children``); 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def _cpu_by_program() -> dict[str, float]:
    """CPU seconds used so far by the PostgreSQL and Redis servers on this host: every live process of the
    program, plus what the postmaster's exited children (backends that closed) left in its own account."""
    totals = {"postgres": 0.0, "redis-server": 0.0}
    processes: dict[int, tuple[str, int]] = {}  # pid → (program, parent pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            processes[int(entry.name)] = (comm, int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]))
        except (OSError, ValueError, IndexError):
            continue
    for pid, (comm, parent) in processes.items():
        for program in totals:
            if comm.startswith(program):
                # The postmaster (its parent is no postgres) also carries its reaped backends' CPU.
                postmaster = program == "postgres" and not processes.get(parent, ("",))[0].startswith("postgres")
                totals[program] += _proc_cpu(pid, children=postmaster)
    return totals


def _database_name(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def main(
    sellers: int,
    products: int,
    workers: int,
    max_jobs: int | None,
    baseline: int,
    dup: bool,
    latency_ms: int = 0,
    latency_jitter_ms: int = 0,
) -> None:
    import msgspec
    from sqlalchemy import func, select

    from app.db.engine import create_engine, create_sessionmaker, session_scope
    from app.db.models import StockLevel, SyncRun, Variant
    from app.db.models.notifications import Alert, Event
    from app.lib.crypto import CredentialCipher

    port = free_port()
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "app", "sandbox", "--port", str(port), "--no-rate-limits"],
        cwd=ROOT,
        env={**os.environ, "STOCK_TRACKER_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}/sandbox"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=300) as h:
            for _ in range(150):
                try:
                    if (await h.get("/wb/ping")).status_code < 500:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.2)
            t0 = time.perf_counter()
            created = []
            for i in range(sellers + baseline):
                seller = (
                    await h.post(
                        "/control/sellers",
                        json={"marketplace": "wildberries", "products": products, "warehouses": 2, "seed": 100 + i},
                    )
                ).json()
                created.append(seller)
                if latency_ms or latency_jitter_ms:
                    faults = {"latency_ms": latency_ms, "latency_jitter_ms": latency_jitter_ms, "rate_limits": "off"}
                    (await h.put(f"/control/sellers/{seller['id']}/faults", json=faults)).raise_for_status()
            seeded_s = time.perf_counter() - t0
        overrides = {"marketplace_rate_limits": False, "wb_base_url": f"{base}/wb"}
        async with bench_settings(**overrides) as settings:
            # The production pool (bench_settings' default is smaller) unless the environment says otherwise.
            settings = msgspec.structs.replace(settings, db_pool_size=int(os.environ.get("BENCH_DB_POOL", "20")))
            jobs_per_worker = max_jobs or settings.worker_max_jobs
            engine = create_engine(settings)
            sm = create_sessionmaker(engine)
            cipher = CredentialCipher(settings.encryption_key_list)
            pairs: list[tuple[str, str]] = []
            for seller in created:
                tid, cid = await add_wb_connection(sm, cipher, seller["credentials"], "fleet")
                pairs.append((str(tid), str(cid)))
            # Baseline: a sample one at a time (in this process), then the fleet through the worker processes.
            one_at_a_time = 0.0
            if baseline:
                await _enqueue(settings, pairs[:baseline], ["baseline"])
                _, one_at_a_time = await _drain(settings, max_jobs=1)
            fleet_pairs = pairs[baseline:]
            await _enqueue(settings, fleet_pairs, ["fleet", "fleet-dup"] if dup else ["fleet"])
            database = _database_name(settings.migration_database_url)
            active_before = await _active_ms(settings, database)
            servers_cpu_before = _cpu_by_program()
            sandbox_cpu_before = _proc_cpu(sandbox.pid)
            env = {
                **os.environ,
                _SETTINGS_ENV: msgspec.json.encode(settings).decode(),
                "STOCK_TRACKER_LOG_LEVEL": "WARNING",
            }
            fleet_start = datetime.now(UTC)
            started = time.perf_counter()
            children = [
                subprocess.Popen(
                    [sys.executable, "-m", "bench.fleet", "--child", "--max-jobs", str(jobs_per_worker)],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
                for _ in range(workers)
            ]
            outputs = await asyncio.gather(*(asyncio.to_thread(c.communicate) for c in children))
            spawn_to_exit = time.perf_counter() - started
            per_worker = []
            for out, _ in outputs:
                line = next((x for x in out.splitlines() if x.startswith("FLEET-CHILD ")), None)
                per_worker.append(json.loads(line.removeprefix("FLEET-CHILD ")) if line else {"error": "no figures"})
            # From each worker's start (after its imports) until it found the queue empty: the longest.
            queue_empty = max((float(w.get("wall_s", 0.0)) for w in per_worker), default=spawn_to_exit)
            await asyncio.sleep(1.0)  # statistics are flushed by the backends at most once a second
            active_s = (await _active_ms(settings, database) - active_before) / 1000
            servers_cpu = {k: v - servers_cpu_before[k] for k, v in _cpu_by_program().items()}
            sandbox_cpu = _proc_cpu(sandbox.pid) - sandbox_cpu_before

            statuses: dict[str, int] = {}
            by_type: dict[str, int] = {}
            durations: list[float] = []
            overlapping = 0
            variants = stock_rows = alerts = 0
            last_sync = fleet_start
            first_start: datetime | None = None
            for tid, cid in fleet_pairs:
                async with session_scope(sm, uuid.UUID(tid)) as s:
                    runs = (
                        await s.execute(
                            select(SyncRun.status, SyncRun.started_at, SyncRun.finished_at)
                            .where(SyncRun.connection_id == uuid.UUID(cid))
                            .order_by(SyncRun.started_at)
                        )
                    ).all()
                    for i, (status, begun, finished) in enumerate(runs):
                        statuses[status.value] = statuses.get(status.value, 0) + 1
                        if begun and finished:
                            durations.append((finished - begun).total_seconds())
                            last_sync = max(last_sync, finished)
                            first_start = begun if first_start is None else min(first_start, begun)
                        if i and begun and runs[i - 1][2] and begun < runs[i - 1][2]:
                            overlapping += 1
                    variants += int((await s.execute(select(func.count()).select_from(Variant))).scalar_one())
                    stock_rows += int((await s.execute(select(func.count()).select_from(StockLevel))).scalar_one())
                    alerts += int((await s.execute(select(func.count()).select_from(Alert))).scalar_one())
                    for kind, n in (await s.execute(select(Event.type, func.count()).group_by(Event.type))).all():
                        by_type[kind] = by_type.get(kind, 0) + int(n)
            await engine.dispose()
    finally:
        os.killpg(sandbox.pid, signal.SIGTERM)
        sandbox.wait(timeout=30)
    per_seller = one_at_a_time / baseline if baseline else 0.0
    # The fleet's span: from the first run's start to the last run's end (process start-up excluded).
    span = max((last_sync - (first_start or fleet_start)).total_seconds(), 1e-9)
    runs_total = sum(statuses.values())
    worker_cpu = sum(float(w.get("cpu_s", 0.0)) for w in per_worker)
    report(
        f"fleet-{sellers}x{products}-w{workers}",
        {
            "sellers": sellers,
            "products_per_seller": products,
            "variants_total": variants,
            "variants_per_seller": round(variants / max(sellers, 1)),
            "stock_rows_total": stock_rows,
            "workers": workers,
            "max_jobs_per_worker": jobs_per_worker,
            "db_pool_per_worker": settings.db_pool_size,
            "poll_delay_s": settings.worker_poll_delay,
            "sandbox_latency_ms": latency_ms,
            "sandbox_latency_jitter_ms": latency_jitter_ms,
            "sandbox_seed_s": round(seeded_s, 1),
            "queue_empty_s": round(queue_empty, 1),
            "workers_spawn_to_exit_s": round(spawn_to_exit, 1),
            "first_run_start_to_last_run_end_s": round(span, 1),
            "syncs_per_s": round(runs_total / span, 2),
            "stock_rows_per_s": round(stock_rows / span),
            "sync_seconds_p50": round(_percentile(durations, 0.5), 2),
            "sync_seconds_p95": round(_percentile(durations, 0.95), 2),
            "sync_seconds_max": round(max(durations, default=0.0), 2),
            "sync_runs_by_status": statuses,
            "overlapping_runs_of_one_connection": overlapping if dup else "not checked (--dup-check)",
            "alerts_opened_total": alerts,
            # What people and integrations received about stock: one event per alert, or one digest per sync.
            "alerts_sent": sum(n for kind, n in by_type.items() if kind.startswith("stock.")),
            "events_by_type": dict(sorted(by_type.items())),
            "worker_processes": per_worker,
            "worker_peak_rss_mb_max": max((int(w.get("peak_rss_mb", 0)) for w in per_worker), default=0),
            "worker_cpu_s_total": round(worker_cpu, 1),
            "postgresql_active_s": round(active_s, 1),
            "postgresql_time_share": round(active_s / (active_s + worker_cpu), 2) if active_s + worker_cpu else None,
            # Where the host's cores went during the fleet (this host's servers: any other work on them counts
            # too, so read these on a quiet machine): CPU seconds by program, and their sum ÷ (span × cores).
            "cpu_s_by_program": {
                "workers": round(worker_cpu, 1),
                "postgresql": round(servers_cpu["postgres"], 1),
                "sandbox": round(sandbox_cpu, 1),
                "redis": round(servers_cpu["redis-server"], 1),
            },
            "cpu_s_per_sync": round((worker_cpu + sum(servers_cpu.values()) + sandbox_cpu) / max(runs_total, 1), 3),
            "cores_busy_share": round(
                (worker_cpu + sum(servers_cpu.values()) + sandbox_cpu) / (queue_empty * (os.cpu_count() or 1)), 2
            ),
            "baseline_one_at_a_time_per_seller_s": round(per_seller, 3),
            "baseline_extrapolated_fleet_s": round(per_seller * sellers, 1),
            "speedup_vs_one_at_a_time": round(per_seller * sellers / span, 2) if per_seller else None,
            "bench_process_peak_rss_mb": round(peak_rss_mb()),
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sellers", type=int, default=1000)
    parser.add_argument("--products", type=int, default=590, help="~1.7 variants per product in the sandbox")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--max-jobs", type=int, default=None, help="per worker (default: the setting)")
    parser.add_argument("--baseline", type=int, default=20)
    parser.add_argument("--latency-ms", type=int, default=0, help="every sandbox request takes this long")
    parser.add_argument("--latency-jitter-ms", type=int, default=0, help="plus a uniform draw up to this")
    parser.add_argument("--dup-check", action="store_true", help="enqueue every connection twice")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if os.environ.get("BENCH_FLEET_TRACEMALLOC"):
            import tracemalloc

            tracemalloc.start(8)
        if profile := os.environ.get("BENCH_FLEET_PROFILE"):  # cProfile of the worker process, to that file
            import cProfile

            cProfile.run("asyncio.run(_child(args.max_jobs or 50))", f"{profile}.{os.getpid()}")
        else:
            asyncio.run(_child(args.max_jobs or 50))
    else:
        asyncio.run(
            main(
                args.sellers,
                args.products,
                args.workers,
                args.max_jobs,
                args.baseline,
                args.dup_check,
                args.latency_ms,
                args.latency_jitter_ms,
            )
        )
