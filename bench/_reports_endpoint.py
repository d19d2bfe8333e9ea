"""The stock report end to end: ``GET /api/v1/reports/stock`` over HTTP from a real API process, on a tenant with
N products (3 stock rows and 2 order lines each, 5 warehouses) written straight into a migrated scratch database.

Per case a fresh API process (`stock-tracker api`, one worker), warmed by one small request; its resident memory
is sampled every 10 ms while the case runs (the peak is that case's alone).
Cases: the XLSX and the CSV file (streamed), and — the baseline, in the same run on the same data — the JSON
report read page by page (1 000 rows a request) the way a client would without files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# One statement per table, generated in the database (COPY-speed, no Python loop): products, one variant each,
# 5 warehouses, stock on the FBW aggregate and both seller warehouses, two order lines per product shipped from
# the marketplace's named warehouses within the 30-day window.
SEED = """
WITH t AS (SELECT $1::uuid AS tid, $2::uuid AS cid)
INSERT INTO connections (id, tenant_id, marketplace, name, credentials_encrypted, status)
SELECT cid, tid, 'wildberries', 'Bench shop', '\\x00'::bytea, 'active' FROM t;

INSERT INTO warehouses (id, tenant_id, connection_id, external_id, name, kind)
SELECT gen_random_uuid(), $1, $2, x.ext, x.name, x.kind::warehouse_kind
FROM (VALUES ('-999999', 'Склад WB', 'fbo'), ('name:Коледино', 'Коледино', 'fbo'),
             ('name:Электросталь', 'Электросталь', 'fbo'), ('101', 'Мой склад Москва', 'fbs'),
             ('102', 'Мой склад Казань', 'fbs')) AS x(ext, name, kind);

INSERT INTO products (id, tenant_id, connection_id, marketplace, external_id, vendor_code, title, brand, subject,
                      search_text)
SELECT gen_random_uuid(), $1, $2, 'wildberries', (200000000 + g)::text, 'NOR-' || lpad(g::text, 6, '0'),
       'Футболка хлопковая базовая ' || g, 'Nordic Line', 'Футболки', ''
FROM generate_series(1, $3::int) g;

INSERT INTO variants (id, tenant_id, connection_id, product_id, external_id, size, barcodes)
SELECT gen_random_uuid(), $1, $2, p.id, (400000000 + row_number() OVER (ORDER BY p.id))::text, 'M', '{}'
FROM products p WHERE p.connection_id = $2;

INSERT INTO stock_levels (tenant_id, variant_id, warehouse_id, connection_id, product_id, quantity,
                          in_way_to_client, in_way_from_client)
SELECT $1, v.id, w.id, $2, v.product_id, (abs(hashtext(v.id::text || w.id::text)) % 300),
       CASE WHEN w.kind = 'fbo' THEN abs(hashtext(v.id::text)) % 5 END,
       CASE WHEN w.kind = 'fbo' THEN abs(hashtext(v.id::text)) % 3 END
FROM variants v JOIN warehouses w ON w.connection_id = $2 AND w.external_id IN ('-999999', '101', '102')
WHERE v.connection_id = $2;

INSERT INTO order_lines (tenant_id, connection_id, external_id, product_id, variant_id, warehouse_id,
                         warehouse_name, ordered_at, order_date, is_cancel, raw)
SELECT $1, $2, v.external_id || '-' || n, v.product_id, v.id, w.id, w.name,
       now() - make_interval(days => 1 + (abs(hashtext(v.id::text || n)) % 28)),
       (now() - make_interval(days => 1 + (abs(hashtext(v.id::text || n)) % 28)))::date, false, '{}'
FROM variants v CROSS JOIN generate_series(1, 2) n
JOIN warehouses w ON w.connection_id = $2 AND w.name = CASE WHEN n = 1 THEN 'Коледино' ELSE 'Электросталь' END
WHERE v.connection_id = $2;
ANALYZE
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The highest resident memory of a process while the block runs (sampled every 10 ms in a thread)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._stop.wait(0.01)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb(self.pid))


@contextlib.contextmanager
def api_process(env: dict[str, str]) -> Iterator[tuple[str, int]]:
    import httpx

    port = free_port()
    cmd = [sys.executable, "-m", "app", "api", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the API exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/health/live", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("the API did not come up")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def _download(base: str, headers: dict[str, str], params: dict[str, str]) -> dict[str, float]:
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        started = time.perf_counter()
        first: float | None = None
        size = 0
        async with http.stream("GET", "/api/v1/reports/stock", params=params, headers=headers) as resp:
            resp.raise_for_status()
            async for chunk in resp.aiter_raw():
                if first is None and chunk:
                    first = time.perf_counter() - started
                size += len(chunk)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "first_byte_s": first or seconds, "bytes": size}


async def _json_pages(base: str, headers: dict[str, str]) -> dict[str, float]:
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=600) as http:
        started = time.perf_counter()
        first: float | None = None
        size, cursor, rows = 0, None, 0
        while True:
            params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
            resp = await http.get("/api/v1/reports/stock", params=params, headers=headers)
            resp.raise_for_status()
            if first is None:
                first = time.perf_counter() - started
            size += len(resp.content)
            page = resp.json()
            rows += len(page["rows"])
            cursor = page["next_cursor"]
            if not cursor:
                break
    return {"seconds": time.perf_counter() - started, "first_byte_s": first or 0.0, "bytes": size, "rows": rows}


def environment(settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCK_TRACKER_")}
    env.update(
        {
            "STOCK_TRACKER_ENV": "production",
            "STOCK_TRACKER_DATABASE_URL": settings.database_url,
            "STOCK_TRACKER_REDIS_URL": settings.redis_url,
            # This run's own queue (bench_settings names it after the database): jobs the API enqueues and no
            # worker here runs must not wait in a shared queue for the next bench's worker.
            "STOCK_TRACKER_QUEUE_NAME": settings.queue_name,
            "STOCK_TRACKER_JWT_SECRET": settings.jwt_secret,
            "STOCK_TRACKER_ENCRYPTION_KEYS": settings.encryption_keys,
            "STOCK_TRACKER_LOG_LEVEL": "WARNING",
            "STOCK_TRACKER_RATE_LIMIT_ENABLED": "false",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


async def measure(products: int) -> dict[str, Any]:
    """Figures per case: seconds, rows/s, time to first byte, the API process's peak RSS, size."""
    import asyncpg
    import httpx

    from bench._common import bench_settings
    from tests.conftest import _asyncpg_kwargs

    figures: dict[str, Any] = {"load average at start": " / ".join(f"{x:.2f}" for x in os.getloadavg())}
    async with bench_settings() as settings:
        env = environment(settings)
        with api_process(env) as (base, _pid):
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                reg = await http.post(
                    "/api/v1/auth/register",
                    json={
                        "email": f"bench-{secrets.token_hex(4)}@example.com",
                        "password": "bench password 1",
                        "organization_name": "Bench",
                    },
                )
                reg.raise_for_status()
        tenant = reg.json()["tenant"]["id"]
        headers = {"Authorization": f"Bearer {reg.json()['tokens']['access_token']}"}
        db = await asyncpg.connect(**_asyncpg_kwargs(settings.migration_database_url))
        try:
            started = time.perf_counter()
            values: dict[int, Any] = {1: uuid.UUID(tenant), 2: uuid.uuid4(), 3: products}
            async with db.transaction():
                for statement in SEED.split(";\n"):
                    if statement.strip():
                        used = sorted({int(n) for n in re.findall(r"\$(\d)", statement)})
                        await db.execute(statement, *[values[n] for n in used])
            figures["seeded"] = f"{products:,} products in {time.perf_counter() - started:.1f} s"
        finally:
            await db.close()
        cases = [
            ("xlsx (streamed file)", {"format": "xlsx"}),
            ("csv (streamed file)", {"format": "csv"}),
            ("json pages of 1 000 (baseline)", None),
        ]
        for name, params in cases:
            with api_process(env) as (base, pid):
                async with httpx.AsyncClient(base_url=base, timeout=60) as http:  # warm: pool, first-call paths
                    (await http.get("/api/v1/reports/stock", params={"limit": "1"}, headers=headers)).raise_for_status()
                idle = rss_mb(pid)
                with RssSampler(pid) as sampler:
                    if params is None:
                        result = await _json_pages(base, headers)
                    else:
                        result = await _download(base, headers, params)
                peak = sampler.peak
            figures[name] = (
                f"{result['seconds']:.2f} s, {products / result['seconds']:,.0f} rows/s, first byte "
                f"{result['first_byte_s'] * 1000:.0f} ms, API RSS peak {peak:.0f} MB (before {idle:.0f}), "
                f"{result['bytes'] / 1e6:.1f} MB"
            )
            figures[f"_{name}"] = {**result, "peak_rss_mb": peak, "idle_rss_mb": idle}
    figures["load average at end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return figures


def run(products: int) -> dict[str, Any]:
    return asyncio.run(measure(products))
