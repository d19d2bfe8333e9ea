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


class StripeStandIn:
    """One account of the sandbox's Stripe stand-in, driven through its control API over HTTP.

    ``api_base`` is what `STOCK_TRACKER_STRIPE_API_BASE` (or the SDK's `base_addresses["api"]`) points at.
    """

    def __init__(self, http: httpx.AsyncClient, base_url: str, account: dict[str, Any]) -> None:
        self.http = http
        self.sandbox = base_url.rstrip("/") + "/sandbox"
        self.account = account
        self.id: str = account["id"]
        self.secret_key: str = account["secret_key"]
        self.control = f"{self.sandbox}/control/stripe/accounts/{self.id}"

    @classmethod
    async def create(cls, http: httpx.AsyncClient, base_url: str, **spec: Any) -> StripeStandIn:
        """``spec``: seed, secret_key, now, delivery ("auto"|"manual"), webhook_url, webhook_secret."""
        resp = await http.post(base_url.rstrip("/") + "/sandbox/control/stripe/accounts", json=spec)
        assert resp.status_code == 201, resp.text
        return cls(http, base_url, resp.json())

    @property
    def api_base(self) -> str:
        return self.sandbox + "/stripe"

    @property
    def webhook_secret(self) -> str:
        endpoints = self.account["webhook_endpoints"]
        assert endpoints, "no webhook endpoint configured"
        return str(endpoints[0]["secret"])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret_key}"}

    async def _ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        resp = await self.http.request(method, self.control + path, json=body)
        assert resp.status_code == status, resp.text
        return resp.json() if resp.content else None

    async def summary(self) -> dict[str, Any]:
        return dict(await self._ok("GET", ""))

    async def set_webhook(
        self, url: str, secret: str | None = None, enabled_events: list[str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"url": url, "secret": secret, "enabled_events": enabled_events or ["*"]}
        result = dict(await self._ok("PUT", "/webhook", body))
        self.account = await self.summary()
        return result

    async def set_delivery(self, mode: str) -> None:
        await self._ok("PUT", "/delivery", {"delivery": mode})

    async def complete_checkout(self, session_id: str, card: str | None = "pm_card_visa") -> dict[str, Any]:
        """The customer pays; returns {id, status, customer, subscription, invoice}."""
        return dict(await self._ok("POST", f"/checkout_sessions/{session_id}/complete", {"card": card}))

    async def complete_checkout_response(self, session_id: str, card: str | None = "pm_card_visa") -> httpx.Response:
        return await self.http.post(f"{self.control}/checkout_sessions/{session_id}/complete", json={"card": card})

    async def advance(self, **target: Any) -> dict[str, Any]:
        """One of seconds=, days=, to= (a timestamp) or to_period_end= (a subscription id)."""
        return dict(await self._ok("POST", "/advance", target))

    async def fail_payments(
        self, times: int | None = 1, customer: str | None = None, decline_code: str = "card_declined"
    ) -> None:
        body = {"outcome": "fail", "times": times, "customer": customer, "decline_code": decline_code}
        await self._ok("POST", "/payments", body)

    async def succeed_payments(self, customer: str | None = None) -> None:
        await self._ok("POST", "/payments", {"outcome": "succeed", "customer": customer})

    async def events(self, type: str | None = None) -> list[dict[str, Any]]:
        resp = await self.http.get(self.control + "/events", params={"type": type} if type else None)
        assert resp.status_code == 200, resp.text
        return list(resp.json()["items"])

    async def deliver(self, events: list[str], times: int = 1, concurrent: bool = False) -> list[dict[str, Any]]:
        body = {"events": events, "times": times, "concurrent": concurrent}
        return list((await self._ok("POST", "/events/deliver", body))["deliveries"])

    async def flush(self) -> list[dict[str, Any]]:
        """Wait until every queued event was delivered (manual mode: deliver them, in order)."""
        return list((await self._ok("POST", "/events/flush"))["deliveries"])

    async def meter_events(self) -> list[dict[str, Any]]:
        return list((await self._ok("GET", "/meter_events"))["items"])

    async def reset(self) -> None:
        await self._ok("POST", "/reset")

    async def delete(self) -> None:
        await self._ok("DELETE", "", status=204)
