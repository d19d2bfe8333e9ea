"""Billing end to end over real HTTP: the API under uvicorn with billing on, the sandbox's Stripe stand-in
(its own account per test, reached by the official SDK), its webhooks delivered to the API, the worker run
in-process, a fake Telegram and a webhook receiver for the events billing publishes."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from litestar.testing import AsyncTestClient

from app.config import Settings
from app.domain.billing.services import PLANS
from app.integrations.stripe import CatalogEntry, StripeGateway
from app.server.app import create_app
from tests.conftest import _asyncpg_kwargs, make_settings
from tests.fakes import BOT_TOKEN, WEBHOOK_SECRET, FakeDNS, drain, free_port
from tests.fakes.receiver import Receiver
from tests.fakes.telegram import FakeTelegram
from tests.helpers import PASSWORD
from tests.sandbox_server import StripeStandIn, run_sandbox

WEBHOOK_PATH = "/api/v1/billing/stripe/webhook"
CATALOG = [CatalogEntry(p.code, p.name, p.price_usd_cents) for p in PLANS.values() if p.purchasable]


@pytest.fixture(scope="package")
def stripe_sandbox() -> Iterator[str]:
    """A sandbox of the billing tests' own (its Stripe stand-in keeps accounts in memory)."""
    with run_sandbox() as base:
        yield base


@pytest.fixture(scope="package")
def telegram_api() -> Iterator[FakeTelegram]:
    with FakeTelegram().serve() as fake:
        yield fake


@pytest.fixture(scope="package")
def receiver() -> Iterator[Receiver]:
    with Receiver().serve() as r:
        yield r


@dataclass
class Keys:
    secret_key: str
    webhook_secret: str


@pytest.fixture(scope="package")
def stripe_keys() -> Keys:
    return Keys("sk_test_billing_" + secrets.token_hex(8), "whsec_billing_" + secrets.token_hex(12))


@pytest.fixture(scope="package")
def billed_settings(
    database: dict[str, str],
    redis_url: str,
    marketplace_sandbox: str,
    stripe_sandbox: str,
    stripe_keys: Keys,
    telegram_api: FakeTelegram,
) -> Settings:
    """Billing on against the stand-in; read-only state read fresh on every write (no cache)."""
    return make_settings(
        database,
        redis_url,
        wb_base_url=f"{marketplace_sandbox}/wb",
        ozon_base_url=f"{marketplace_sandbox}/ozon",
        stripe_secret_key=stripe_keys.secret_key,
        stripe_webhook_secret=stripe_keys.webhook_secret,
        stripe_api_base=f"{stripe_sandbox}/sandbox/stripe",
        billing_access_cache_seconds=0,
        public_url="https://app.example",
        webhook_allowed_networks="127.0.0.0/8",
        telegram_bot_token=BOT_TOKEN,
        telegram_api_base=telegram_api.url,
        telegram_webhook_secret=WEBHOOK_SECRET,
    )


@contextlib.contextmanager
def serve_app(settings: Settings) -> Iterator[str]:
    """``create_app(settings)`` under uvicorn in a thread (lifespan on); yields its base URL."""
    from app.server.app import create_app

    port = free_port()
    app = create_app(settings)
    app.state.resolver = FakeDNS()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", access_log=False)
    )
    thread = threading.Thread(target=server.run, name=f"billing-api-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@pytest.fixture(scope="package")
def billed_api(billed_settings: Settings) -> Iterator[str]:
    with serve_app(billed_settings) as base:
        yield base


@dataclass
class World:
    """One test's billing world: the API, a fresh stand-in account delivering webhooks to it, the gateway."""

    api: httpx.AsyncClient
    settings: Settings
    standin: StripeStandIn
    stripe: StripeGateway
    database: dict[str, str]

    async def settle(self) -> None:
        """Every event the stand-in queued is delivered (stored by the API), then every job has run."""
        await self.standin.flush()
        await drain(self.settings)

    async def register(self, org: str = "Shop") -> dict[str, Any]:
        email = f"owner-{secrets.token_hex(6)}@example.com"
        resp = await self.api.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD, "organization_name": org}
        )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        body["email"] = email
        body["headers"] = {"Authorization": f"Bearer {body['tokens']['access_token']}"}
        return body

    async def billing(self, owner: dict[str, Any]) -> dict[str, Any]:
        resp = await self.api.get("/api/v1/billing", headers=owner["headers"])
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    async def checkout(self, owner: dict[str, Any], plan: str, card: str | None = "pm_card_visa") -> dict[str, Any]:
        """Start Checkout over the API and pay on the stand-in; returns the completed session."""
        resp = await self.api.post("/api/v1/billing/checkout", json={"plan": plan}, headers=owner["headers"])
        assert resp.status_code == 201, resp.text
        session_id = resp.json()["url"].rstrip("/").rsplit("/", 1)[-1]
        assert session_id.startswith("cs_"), resp.text
        return await self.standin.complete_checkout(session_id, card=card)

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """A query as the owner (no row-level security): what the database really holds."""
        conn = await asyncpg.connect(**_asyncpg_kwargs(self.database["owner"]))
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()


@pytest.fixture
async def world(
    billed_api: str, billed_settings: Settings, stripe_sandbox: str, stripe_keys: Keys, database: dict[str, str]
) -> AsyncIterator[World]:
    async with httpx.AsyncClient(base_url=billed_api, timeout=60) as api, httpx.AsyncClient(timeout=60) as http:
        standin = await StripeStandIn.create(
            http,
            stripe_sandbox,
            secret_key=stripe_keys.secret_key,
            webhook_url=f"{billed_api}{WEBHOOK_PATH}",
            webhook_secret=stripe_keys.webhook_secret,
        )
        gateway = StripeGateway.from_settings(billed_settings)
        try:
            await gateway.sync_catalog(CATALOG)
            await standin.flush()
            yield World(api, billed_settings, standin, gateway, database)
        finally:
            await gateway.aclose()
            await standin.delete()


# Billing on with no Stripe to reach: what the limits and the read-only state do never calls Stripe.
@pytest.fixture(scope="package")
def limited_settings(database: dict[str, str], redis_url: str, marketplace_sandbox: str) -> Settings:
    return make_settings(
        database,
        redis_url,
        wb_base_url=f"{marketplace_sandbox}/wb",
        ozon_base_url=f"{marketplace_sandbox}/ozon",
        stripe_secret_key="sk_test_limits_only",
        stripe_webhook_secret="whsec_limits_only_0123456789",
        stripe_api_base=f"http://127.0.0.1:{free_port()}",  # nothing listens: a call to Stripe would fail
        billing_access_cache_seconds=0,
        webhook_allowed_networks="127.0.0.0/8",
    )


@pytest.fixture(scope="package")
async def limited_api(limited_settings: Settings, redis: Any) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(limited_settings)
    app.state.resolver = FakeDNS()
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        yield client
