"""The alerting tests' servers and a seller to alert about: the Telegram fake, a webhook receiver, settings with
both wired in, the app, and a synced shop (its first, silent sync already done)."""

from __future__ import annotations

import uuid

import pytest
from litestar.testing import AsyncTestClient

from app.server.app import create_app
from tests.fakes import alert_settings, sync_and_evaluate
from tests.fakes.receiver import Receiver
from tests.fakes.telegram import FakeTelegram, link_chat, new_chat_id
from tests.helpers import register
from tests.integration.alerts.support import STOCK_EVENTS, Shop
from tests.sync_support import connect, make_seller


@pytest.fixture(scope="module")
def telegram_api():
    with FakeTelegram().serve() as fake:
        yield fake


@pytest.fixture(scope="module")
def receiver():
    with Receiver().serve() as r:
        yield r


@pytest.fixture(scope="module")
def st(database, redis_url, marketplace_sandbox, telegram_api):
    return alert_settings(database, redis_url, marketplace_sandbox, telegram_api.url)


@pytest.fixture(scope="module")
async def api(st, redis):
    async with AsyncTestClient(app=create_app(st), base_url="http://testserver.local") as client:
        yield client


@pytest.fixture
async def shop(api, st, marketplace_sandbox, receiver, telegram_api):
    owner = await register(api)
    seller = make_seller(marketplace_sandbox, "wildberries", products=5, warehouses=1, seed=31)
    conn = await connect(api, owner["headers"], seller)
    path = f"/shop-{uuid.uuid4().hex[:8]}"
    resp = await api.post(
        "/api/v1/webhook-endpoints",
        json={"url": receiver.url(path), "event_types": STOCK_EVENTS},
        headers=owner["headers"],
    )
    assert resp.status_code == 201
    chat = new_chat_id()
    await link_chat(api, owner["headers"], st, telegram_api, chat)
    shop = Shop(owner, seller, conn, resp.json(), path, chat)
    # A seller synced before: the first sync is the silent baseline (nothing low here, so not even a digest).
    shop.set({})
    await sync_and_evaluate(st, shop.tid, conn["id"])
    yield shop
    seller.delete()
