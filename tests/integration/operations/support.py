"""The API and the worker as real processes (`python -m app api` / `worker`), configured through the
environment like a deployment, each with its own /metrics."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.config import Settings
from tests.sandbox_server import free_port

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Deployment:
    api_url: str
    worker_metrics_url: str
    metrics_token: str
    queue_name: str
    logs: dict[str, Path]


def deployment_env(settings: Settings, **extra: str) -> dict[str, str]:
    """``settings`` as STOCK_TRACKER_* variables (the processes read nothing else)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCK_TRACKER_")}
    for name in Settings.__struct_fields__:
        value = getattr(settings, name)
        env["STOCK_TRACKER_" + name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    env.update(extra)
    return env


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer\n{log.read_text()[-4000:]}")


@contextlib.contextmanager
def deploy(settings: Settings, tmp: Path, **extra: str) -> Iterator[Deployment]:
    """API and worker processes on free ports, a queue of their own, crons off (the shared test database
    holds other tests' connections: a fan-out would sync them)."""
    token = secrets.token_urlsafe(32)
    queue = f"arq:ops:{secrets.token_hex(4)}"
    api_port, worker_port = free_port(), free_port()
    env = deployment_env(
        settings,
        STOCK_TRACKER_QUEUE_NAME=queue,
        STOCK_TRACKER_WORKER_CRONS="false",
        STOCK_TRACKER_WORKER_METRICS_PORT=str(worker_port),
        STOCK_TRACKER_METRICS_TOKEN=token,
        STOCK_TRACKER_LOG_FORMAT="json",
        STOCK_TRACKER_LOG_LEVEL="INFO",
        **extra,
    )
    logs = {"api": tmp / "api.log", "worker": tmp / "worker.log"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, argv in (
            ("api", ["api", "--host", "127.0.0.1", "--port", str(api_port)]),
            ("worker", ["worker"]),
        ):
            with logs[name].open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "app", *argv], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
                    )
                )
        auth = {"Authorization": f"Bearer {token}"}
        _wait(f"http://127.0.0.1:{api_port}/health/ready", procs[0], logs["api"])
        _wait(f"http://127.0.0.1:{worker_port}/metrics", procs[1], logs["worker"], auth)
        yield Deployment(
            api_url=f"http://127.0.0.1:{api_port}",
            worker_metrics_url=f"http://127.0.0.1:{worker_port}/metrics",
            metrics_token=token,
            queue_name=queue,
            logs=logs,
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
