"""The sandbox served by uvicorn on a free loopback port for the whole session; tests speak real HTTP."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.sandbox._support import MakeSeller, SandboxSeller
from tests.sandbox_server import serve_sandbox

logging.getLogger("httpx").setLevel(logging.WARNING)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    with serve_sandbox() as url:
        yield url


@pytest.fixture(scope="session")
def http(sandbox_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox_url, timeout=30) as client:
        yield client


@pytest.fixture
def make_seller(http: httpx.Client) -> Iterator[MakeSeller]:
    """Create sellers (rate limits off unless `rate_limits="real"`); they are deleted after the test."""
    made: list[SandboxSeller] = []

    def make(marketplace: str = "wildberries", *, rate_limits: str = "off", **options: Any) -> SandboxSeller:
        body = {"marketplace": marketplace, "products": 50, "warehouses": 2, "seed": 1, **options}
        response = http.post("/control/sellers", json=body)
        assert response.status_code == 201, response.text
        data = response.json()
        seller = SandboxSeller(http, data["id"], data["marketplace"], data["credentials"], data)
        made.append(seller)
        if rate_limits != "real":
            seller.set_faults(rate_limits=rate_limits)
        return seller

    yield make
    for seller in made:
        http.delete(f"/control/sellers/{seller.id}")
