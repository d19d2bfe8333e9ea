"""The Telegram bot against a local fake Bot API over real HTTP: the webhook's secret, linking with a
one-time code, every command, duplicate updates, 429 / 403 / chat migration on sends, set-webhook."""

from __future__ import annotations

import json
import uuid

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from app.cli.telegram import set_webhook, webhook_info
from app.db.models.notifications import TelegramUpdate
from app.domain.events.services import publish_event
from app.server.app import create_app
from tests.fakes import WEBHOOK_SECRET, alert_settings, drain, sync_and_evaluate, tenant_session
from tests.fakes.telegram import (
    BOT_USERNAME,
    FakeTelegram,
    blocked,
    link_chat,
    migrated,
    new_chat_id,
    next_update_id,
    post_update,
    too_many_requests,
    update,
)
from tests.helpers import register
from tests.sync_support import connect, make_seller


@pytest.fixture(scope="module")
def telegram_api():
    with FakeTelegram().serve() as fake:
        yield fake


@pytest.fixture(scope="module")
def st(database, redis_url, marketplace_sandbox, telegram_api):
    return alert_settings(database, redis_url, marketplace_sandbox, telegram_api.url)


@pytest.fixture(scope="module")
async def api(st, redis):
    async with AsyncTestClient(app=create_app(st), base_url="http://testserver.local") as client:
        yield client


async def say(api, st, telegram_api, chat_id: int, text: str) -> str:
    """Send a message to the bot as Telegram would, let the worker answer, return the answer."""
    before = len(telegram_api.sent(chat_id))
    resp = await post_update(api, update(next_update_id(), chat_id, text))
    assert resp.status_code == 200, resp.text
    await drain(st)
    sent = telegram_api.sent(chat_id)
    assert len(sent) == before + 1, [c.text for c in sent[before:]]
    return sent[-1].text


async def notify(st, tenant_id: str, key: str) -> None:
    """Record an event the bot must tell the chat about (the sync engine records this one)."""
    async with tenant_session(st, tenant_id) as s:
        await publish_event(
            s,
            uuid.UUID(tenant_id),
            "connection.invalid",
            {"connection_id": str(uuid.uuid4()), "connection_name": f"Shop <{key}>"},
            key=f"test:{key}",
        )


async def test_webhook_checks_the_secret_token_and_the_body(api):
    payload = update(next_update_id(), new_chat_id(), "/help")
    assert (await post_update(api, payload, secret="")).status_code == 401
    wrong = await post_update(api, payload, secret=WEBHOOK_SECRET + "x")
    assert wrong.status_code == 401 and wrong.json()["code"] == "unauthorized"
    garbage = await api.post(
        "/telegram/webhook",
        content=b'{"not": "an update"}',
        headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET, "Content-Type": "application/json"},
    )
    assert garbage.status_code == 422


async def test_link_with_a_one_time_code_then_every_command(api, st, telegram_api, marketplace_sandbox):
    owner = await register(api, "Гриб & Co")
    h = owner["headers"]
    chat = new_chat_id()
    resp = await api.post("/api/v1/notification-channels/telegram", headers=h)
    assert resp.status_code == 201
    link = resp.json()
    assert link["bot_username"] == BOT_USERNAME
    assert link["deep_link"] == f"https://t.me/{BOT_USERNAME}?start={link['code']}"
    # Before linking, commands explain how to link.
    assert "not linked" in await say(api, st, telegram_api, chat, "/stock")
    reply = await say(api, st, telegram_api, chat, f"/start {link['code']}")
    assert "Linked to <b>Гриб &amp; Co</b>" in reply  # HTML-escaped organization name
    channels = (await api.get("/api/v1/notification-channels", headers=h)).json()["items"]
    assert [(c["chat_id"], c["active"]) for c in channels] == [(chat, True)]
    # The code is one-time, and not kept in the stored update.
    assert "invalid, used or expired" in await say(api, st, telegram_api, new_chat_id(), f"/start {link['code']}")
    async with tenant_session(st, owner["tenant"]["id"]) as s:
        stored = (await s.execute(select(TelegramUpdate.payload))).scalars().all()
    assert stored and not any(link["code"] in json.dumps(p) for p in stored)
    assert "/report" in await say(api, st, telegram_api, chat, "/help")
    assert "I don't know that command" in await say(api, st, telegram_api, chat, "/dance")
    assert "no products yet" in await say(api, st, telegram_api, chat, "/stock@" + BOT_USERNAME)
    assert "No marketplace connections" in await say(api, st, telegram_api, chat, "/sync")
    # With a synced seller: summary, low products, the report, a manual sync with its cooldown.
    seller = make_seller(marketplace_sandbox, "wildberries", products=4, warehouses=1, seed=21)
    try:
        conn = await connect(api, h, seller, name="Main <WB>")
        items = seller.truth()
        seller.set_stocks([{**i, "quantity": 0 if n == 0 else 50} for n, i in enumerate(items)])
        await sync_and_evaluate(st, owner["tenant"]["id"], conn["id"])
        stock = await say(api, st, telegram_api, chat, "/stock")
        assert "Wildberries: 4 products" in stock and "fewer than 5 units" in stock
        low = await say(api, st, telegram_api, chat, "/low")
        assert "Low or out of stock" in low and "⛔" in low
        await post_update(api, update(next_update_id(), chat, "/report"))
        await drain(st)
        documents = telegram_api.sent(chat, method="sendDocument")  # the XLSX (tests/integration/reports)
        assert len(documents) == 1 and documents[0].files and documents[0].files["document"][:2] == b"PK"
        started = await say(api, st, telegram_api, chat, "/sync")
        assert "Main &lt;WB&gt;: sync started" in started
        runs = (await api.get("/api/v1/syncs", params={"connection_id": conn["id"]}, headers=h)).json()["items"]
        assert runs[0]["trigger"] == "manual"
        assert "moments ago" in await say(api, st, telegram_api, chat, "/sync")
    finally:
        seller.delete()
    # Plain chatter gets no answer.
    await post_update(api, update(next_update_id(), chat, "hello there"))
    await drain(st)
    assert "hello" not in telegram_api.sent(chat)[-1].text


async def test_an_update_delivered_twice_is_handled_once(api, st, telegram_api):
    chat = new_chat_id()
    payload = update(next_update_id(), chat, "/help")
    assert (await post_update(api, payload)).status_code == 200
    assert (await post_update(api, payload)).status_code == 200
    await drain(st)
    await post_update(api, payload)
    await drain(st)
    assert len(telegram_api.sent(chat)) == 1


async def test_alerts_respect_429_retry_after(api, st, telegram_api):
    owner = await register(api)
    chat = new_chat_id()
    await link_chat(api, owner["headers"], st, telegram_api, chat)
    telegram_api.script("sendMessage", too_many_requests(1))
    await notify(st, owner["tenant"]["id"], "flood")
    await drain(st)
    calls = telegram_api.sent(chat)[1:]
    assert len(calls) == 2 and "Shop &lt;flood&gt;" in calls[1].text
    assert calls[1].at - calls[0].at >= 0.9  # waited retry_after before sending again


async def test_blocked_bot_deactivates_the_chat_and_logs_why(api, st, telegram_api):
    owner = await register(api)
    h = owner["headers"]
    chat = new_chat_id()
    await link_chat(api, h, st, telegram_api, chat)
    telegram_api.script("sendMessage", blocked())
    await notify(st, owner["tenant"]["id"], "blocked-1")
    await drain(st)
    [channel] = (await api.get("/api/v1/notification-channels", headers=h)).json()["items"]
    assert channel["active"] is False and "blocked" in channel["deactivated_reason"]
    sent_before = len(telegram_api.sent(chat))
    await notify(st, owner["tenant"]["id"], "blocked-2")
    await drain(st)
    assert len(telegram_api.sent(chat)) == sent_before
    log = (await api.get("/api/v1/alert-suppressions", headers=h)).json()["items"]
    assert [e["reason"] for e in log] == ["channel_inactive", "channel_inactive"]
    # Linking again re-activates it.
    await link_chat(api, h, st, telegram_api, chat)
    [channel] = (await api.get("/api/v1/notification-channels", headers=h)).json()["items"]
    assert channel["active"] is True


async def test_group_migrated_to_supergroup_is_followed(api, st, telegram_api):
    owner = await register(api)
    h = owner["headers"]
    chat, supergroup = -new_chat_id(), -(10**12 + new_chat_id())
    await link_chat(api, h, st, telegram_api, chat)
    telegram_api.script("sendMessage", migrated(supergroup))
    await notify(st, owner["tenant"]["id"], "migrate")
    await drain(st)
    [resent] = telegram_api.sent(supergroup)
    assert "Shop &lt;migrate&gt;" in resent.text
    [channel] = (await api.get("/api/v1/notification-channels", headers=h)).json()["items"]
    assert channel["chat_id"] == supergroup and channel["active"] is True
    # Unlinking stops everything for that chat.
    assert (await api.delete(f"/api/v1/notification-channels/{channel['id']}", headers=h)).status_code == 204
    await notify(st, owner["tenant"]["id"], "after-unlink")
    await drain(st)
    assert len(telegram_api.sent(supergroup)) == 1
    other = await register(api, "Other")
    assert (
        await api.delete(f"/api/v1/notification-channels/{channel['id']}", headers=other["headers"])
    ).status_code == 404


async def test_set_webhook_registers_the_url_and_secret(st, telegram_api):
    assert await set_webhook(st) == "http://testserver.local/telegram/webhook"
    assert telegram_api.webhook["secret_token"] == WEBHOOK_SECRET
    assert telegram_api.webhook["allowed_updates"] == ["message", "channel_post"]
    await set_webhook(st, "https://bot.example.com/telegram/webhook")
    assert "https://bot.example.com/telegram/webhook" in await webhook_info(st)
