"""An outside service answering badly is a 502 problem naming it, and a saturated database a 503 — never a
500 (issue 14 §4)."""

from __future__ import annotations

import httpx
import pytest
from litestar.testing import AsyncTestClient

from app.cli.telegram import set_webhook
from app.integrations.telegram.client import TelegramBadResponse
from app.server.app import create_app
from tests.fakes import alert_settings
from tests.fakes.telegram import FakeTelegram
from tests.helpers import register

BOT_USERNAME_KEY = "telegram:bot_username"  # where the link service caches getMe's answer


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


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 200, "body": {"ok": True, "result": "not a user"}},
        {"status": 200, "body": {"ok": True, "result": {"id": "abc"}}},
        {"status": 200, "body": ["not", "an", "api", "response"]},
        {"status": 200, "body": {"result": {"id": 1}}},
    ],
)
async def test_malformed_get_me_is_a_502_naming_telegram(api, telegram_api, redis, answer):
    owner = await register(api)
    await redis.delete(BOT_USERNAME_KEY)
    telegram_api.script("getMe", answer)
    resp = await api.post("/api/v1/notification-channels/telegram", headers=owner["headers"])
    assert resp.status_code == 502, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["upstream"] == "telegram" and body["code"] == "bad_upstream_response"
    assert "getMe" in body["detail"]


async def test_malformed_set_webhook_answer_is_a_bad_response(st, telegram_api):
    telegram_api.script("setWebhook", {"status": 200, "body": {"ok": True, "result": {"unexpected": 1}}})
    with pytest.raises(TelegramBadResponse) as caught:
        await set_webhook(st)
    assert caught.value.upstream == "telegram" and caught.value.status_code == 502


async def test_an_untranslated_upstream_failure_is_a_502(settings):
    """Any outbound HTTP failure an area did not translate is answered 502 naming the host, not 500."""
    from litestar import get

    @get("/health/test-upstream", include_in_schema=False)
    async def boom() -> None:
        async with httpx.AsyncClient() as http:
            await http.get("http://127.0.0.1:1/nothing", timeout=1)

    app = create_app(settings)
    app.register(boom)
    async with AsyncTestClient(app=app) as c:
        resp = await c.get("/health/test-upstream")
    assert resp.status_code == 502, resp.text
    assert resp.json()["upstream"] == "127.0.0.1"


async def test_an_exhausted_database_pool_is_a_503_not_a_500(settings):
    from litestar import get
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    @get("/health/test-pool", include_in_schema=False)
    async def saturated() -> None:
        raise PoolTimeoutError("QueuePool limit of size 10 overflow 0 reached")

    app = create_app(settings)
    app.register(saturated)
    async with AsyncTestClient(app=app) as c:
        resp = await c.get("/health/test-pool")
    assert resp.status_code == 503 and resp.json()["code"] == "database_busy"
    assert resp.headers["retry-after"] == "1" and "QueuePool" not in resp.text
