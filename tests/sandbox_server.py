"""The sandbox marketplace served by uvicorn on 127.0.0.1 in a background thread, for tests over real HTTP.

Use ``run_sandbox()`` (or ``serve_sandbox()``, which yields the ``…/sandbox`` base) from a fixture;
``SandboxControl`` wraps the control API (sellers, faults, stats).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from app.sandbox import create_standalone_sandbox_app


@contextlib.contextmanager
def run_sandbox(*, rate_limits: bool = True) -> Iterator[str]:
    """Serve a fresh sandbox; yields its base URL (``http://127.0.0.1:<port>``; APIs under ``/sandbox``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_standalone_sandbox_app(rate_limits=rate_limits),
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the sandbox server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve_sandbox() -> Iterator[str]:
    """A sandbox with its own rate limits available; yields ``http://127.0.0.1:<port>/sandbox``."""
    with run_sandbox() as base:
        yield f"{base}/sandbox"


class SandboxControl:
    """The sandbox's control API over HTTP."""

    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self.http = http
        self.base = base_url.rstrip("/") + "/sandbox"

    @property
    def wb_url(self) -> str:
        return self.base + "/wb"

    @property
    def ozon_url(self) -> str:
        return self.base + "/ozon"

    async def create_seller(self, marketplace: str, **spec: Any) -> dict[str, Any]:
        resp = await self.http.post(f"{self.base}/control/sellers", json={"marketplace": marketplace, **spec})
        assert resp.status_code == 201, resp.text
        return resp.json()

    async def seller(self, seller_id: str) -> dict[str, Any]:
        resp = await self.http.get(f"{self.base}/control/sellers/{seller_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()

    async def faults(self, seller_id: str, **faults: Any) -> None:
        resp = await self.http.put(f"{self.base}/control/sellers/{seller_id}/faults", json=faults)
        assert resp.status_code == 200, resp.text

    async def truth(self, seller_id: str) -> list[dict[str, Any]]:
        resp = await self.http.get(f"{self.base}/control/sellers/{seller_id}/stocks")
        assert resp.status_code == 200, resp.text
        return resp.json()["items"]
