"""What is exposed (issue 14 §5): /metrics on the API and on the worker's listener answers only the scrape
token (or, with no token configured, only loopback clients); per-address limits see the real client behind
the trusted proxy and only behind it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from app.config import Settings
from app.server.app import create_app
from app.worker.metrics import serve_worker_metrics
from tests.conftest import METRICS_HEADERS, METRICS_TOKEN, unique_email
from tests.contract.support import serve_api
from tests.sandbox_server import free_port

ROOT = Path(__file__).resolve().parents[3]


# ---- /metrics on the API port ------------------------------------------------------------------------------


async def test_api_metrics_need_the_token(settings):
    async with AsyncTestClient(app=create_app(settings)) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
            resp = await c.get("/metrics", headers=headers)
            assert resp.status_code == 404, headers
            assert resp.headers["content-type"].startswith("application/problem+json")
            assert "http_server" not in resp.text
        ok = await c.get("/metrics", headers=METRICS_HEADERS)
        assert ok.status_code == 200 and "# TYPE" in ok.text


async def test_api_metrics_without_a_token_answer_only_loopback(settings):
    open_settings = msgspec.structs.replace(settings, metrics_token="")
    # The test client's peer is not a loopback address: refused.
    async with AsyncTestClient(app=create_app(open_settings)) as c:
        assert (await c.get("/metrics")).status_code == 404
    # A real socket from 127.0.0.1: answered.
    with serve_api(open_settings) as url:
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 200


# ---- the worker's listener -------------------------------------------------------------------------------


@contextlib.contextmanager
def worker_listener(token: str) -> Iterator[str]:
    port = free_port()
    server, thread = serve_worker_metrics("127.0.0.1", port, token)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_worker_metrics_need_the_token() -> None:
    with worker_listener("s3cret-token") as url:
        assert httpx.get(f"{url}/metrics", timeout=5).status_code == 404
        assert httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 404
        ok = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer s3cret-token"}, timeout=5)
        assert ok.status_code == 200 and "# TYPE" in ok.text


def test_worker_metrics_without_a_token_answer_loopback() -> None:
    with worker_listener("") as url:
        assert httpx.get(f"{url}/metrics", timeout=5).status_code == 200


def test_worker_metrics_listen_on_loopback_by_default() -> None:
    assert Settings().worker_metrics_addr == "127.0.0.1"
    from app.config import load_settings

    loaded = load_settings(
        {"STOCK_TRACKER_WORKER_METRICS_ADDR": "0.0.0.0", "STOCK_TRACKER_WORKER_METRICS_PORT": "9200"}
    )
    assert (loaded.worker_metrics_addr, loaded.worker_metrics_port) == ("0.0.0.0", 9200)


# ---- forwarded headers: trusted from the proxy only ------------------------------------------------------------


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCK_TRACKER_")}
    for name, value in msgspec.structs.asdict(settings).items():
        env[f"STOCK_TRACKER_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    # Development mode: the production per-address login limits (test mode turns them off).
    env["STOCK_TRACKER_ENV"] = "development"
    env.update(extra)
    return env


@contextlib.contextmanager
def api_process(settings: Settings, forwarded_allow_ips: str) -> Iterator[str]:
    """`python -m app api` exactly as deployed, trusting X-Forwarded-For only from ``forwarded_allow_ips``."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "api", "--host", "127.0.0.1", "--port", str(port)],
        env=_env(settings, STOCK_TRACKER_FORWARDED_ALLOW_IPS=forwarded_allow_ips),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


PER_ADDRESS_PER_MINUTE = 60  # AuthThrottle.default(): login attempts per client address and minute


def _exhaust(http: httpx.Client, client_ip: str) -> tuple[list[int], float]:
    """Log in (with wrong passwords, a new e-mail each time) as ``client_ip`` until refused; and how long."""
    statuses = []
    started = time.monotonic()
    for _ in range(2 * PER_ADDRESS_PER_MINUTE):
        resp = http.post(
            "/api/v1/auth/login",
            json={"email": unique_email("proxy"), "password": "wrong password"},
            headers={"X-Forwarded-For": client_ip},
        )
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            break
    return statuses, time.monotonic() - started


@pytest.mark.parametrize("trusted", [True, False], ids=["behind-trusted-proxy", "untrusted-peer"])
def test_clients_behind_the_proxy_get_separate_budgets(settings, trusted):
    # The "proxy" is this test on 127.0.0.1; when it is not trusted, X-Forwarded-For is ignored.
    allow = "127.0.0.1" if trusted else "192.0.2.1"
    tag = os.urandom(2).hex()  # client addresses of this run only (the limiter's counters live in Redis)
    first, second = f"198.51.{int(tag[:2], 16)}.{int(tag[2:], 16)}", f"203.0.{int(tag[:2], 16)}.{int(tag[2:], 16)}"
    with api_process(settings, allow) as base, httpx.Client(base_url=base, timeout=30) as http:
        statuses, elapsed = _exhaust(http, first)
        # A sliding window admits at most L + L·d/W in an interval d (app/lib/ratelimit.py).
        bound = PER_ADDRESS_PER_MINUTE * (1 + elapsed / 60) + 1
        assert statuses[-1] == 429 and len(statuses) <= bound + 1, (len(statuses), elapsed)
        others = [
            http.post(
                "/api/v1/auth/login",
                json={"email": unique_email("proxy"), "password": "wrong password"},
                headers={"X-Forwarded-For": second},
            ).status_code
            for _ in range(5)
        ]
        if trusted:
            assert others == [401] * 5  # its own budget: only the credentials are wrong
        else:
            assert others.count(429) >= 4, others  # one peer, one budget, whatever the header says
