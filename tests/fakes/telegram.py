"""A fake Telegram Bot API over real HTTP (``POST /bot<token>/<method>``, JSON or multipart).

It records every call, answers like the real API (``{"ok": true, "result": …}``), refuses a wrong token
with 401, and can be scripted to answer the next calls of a method with a 429 (``retry_after``), a 403
(bot blocked) or a 400 carrying ``migrate_to_chat_id``.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from litestar import Litestar, Request, Response, post

from tests.fakes import BOT_TOKEN, serve_asgi

BOT_USERNAME = "stock_tracker_test_bot"


@dataclass(frozen=True)
class Call:
    method: str
    payload: dict[str, Any]
    at: float
    files: dict[str, bytes] | None = None

    @property
    def chat_id(self) -> int | None:
        value = self.payload.get("chat_id")
        return int(value) if value is not None else None

    @property
    def text(self) -> str:
        return str(self.payload.get("text") or self.payload.get("caption") or "")


def too_many_requests(retry_after: int = 1) -> dict[str, Any]:
    return {
        "status": 429,
        "body": {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        },
    }


def blocked() -> dict[str, Any]:
    return {
        "status": 403,
        "body": {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
    }


def migrated(new_chat_id: int) -> dict[str, Any]:
    return {
        "status": 400,
        "body": {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: group chat was upgraded to a supergroup chat",
            "parameters": {"migrate_to_chat_id": new_chat_id},
        },
    }


class FakeTelegram:
    def __init__(self, token: str = BOT_TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.webhook: dict[str, Any] = {}
        self._scripts: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.url = ""

    # --- test side -----------------------------------------------------------------------------------
    def script(self, method: str, *answers: dict[str, Any]) -> None:
        with self._lock:
            self._scripts[method].extend(answers)

    def sent(self, chat_id: int | None = None, method: str = "sendMessage") -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and (chat_id is None or c.chat_id == chat_id)]

    def wait_sent(self, chat_id: int, count: int = 1, timeout: float = 10.0) -> list[Call]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.sent(chat_id)) < count:
            time.sleep(0.02)
        return self.sent(chat_id)

    @contextlib.contextmanager
    def serve(self) -> Iterator[FakeTelegram]:
        with serve_asgi(self.app(), "fake-telegram") as base:
            self.url = base
            yield self

    # --- server side ---------------------------------------------------------------------------------
    def app(self) -> Litestar:
        fake = self

        @post("/{rest:path}", status_code=200)
        async def call(request: Request[Any, Any, Any], rest: str) -> Response[Any]:
            bot, _, method = rest.strip("/").partition("/")
            if not bot.startswith("bot") or not method:
                return Response({"ok": False, "error_code": 404, "description": "Not Found"}, status_code=404)
            token = bot[3:]
            files: dict[str, bytes] | None = None
            if request.headers.get("content-type", "").startswith("multipart/"):
                form = await request.form()
                payload: dict[str, Any] = {}
                files = {}
                for key, value in form.multi_items():
                    if hasattr(value, "read"):
                        files[key] = await value.read()
                    else:
                        payload[key] = value
            else:
                raw = await request.body()
                payload = (await request.json()) if raw else {}
            return fake.answer(token, method, payload, files)

        return Litestar(route_handlers=[call], debug=False)

    def answer(self, token: str, method: str, payload: dict[str, Any], files: dict[str, bytes] | None) -> Response[Any]:
        if token != self.token:
            return Response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
        with self._lock:
            self.calls.append(Call(method, payload, time.time(), files))
            queue = self._scripts.get(method)
            scripted = queue.popleft() if queue else None
        if scripted is not None:
            return Response(scripted["body"], status_code=scripted["status"])
        return Response({"ok": True, "result": self._result(method, payload)}, status_code=200)

    def _result(self, method: str, payload: dict[str, Any]) -> Any:
        if method == "getMe":
            return {"id": 123456, "is_bot": True, "first_name": "Stock Tracker", "username": BOT_USERNAME}
        if method in ("sendMessage", "sendDocument"):
            chat_id = int(payload.get("chat_id", 0))
            return {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "text": payload.get("text") or payload.get("caption"),
            }
        if method == "setWebhook":
            self.webhook = dict(payload)
            return True
        if method == "deleteWebhook":
            self.webhook = {}
            return True
        if method == "getWebhookInfo":
            return {"url": self.webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}
        return True


def update(
    update_id: int, chat_id: int, text: str, *, chat_type: str = "private", title: str | None = None
) -> dict[str, Any]:
    """An update as Telegram POSTs it to our webhook."""
    chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
    if title:
        chat["title"] = title
    else:
        chat["first_name"] = "Seller"
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": abs(chat_id), "is_bot": False, "first_name": "Seller"},
            "text": text,
        },
    }


_update_ids = itertools.count(int(time.time() * 1000) % 10**9 * 10)


def next_update_id() -> int:
    return next(_update_ids)


def new_chat_id() -> int:
    return 10**9 + next(_update_ids) % 10**9


async def post_update(client: Any, payload: dict[str, Any], secret: str | None = None) -> Any:
    from tests.fakes import WEBHOOK_SECRET

    headers = {"X-Telegram-Bot-Api-Secret-Token": secret if secret is not None else WEBHOOK_SECRET}
    return await client.post("/telegram/webhook", json=payload, headers=headers)


async def link_chat(client: Any, headers: dict[str, str], settings: Any, fake: FakeTelegram, chat_id: int) -> str:
    """Link a chat the way a seller does: get a code from the API, send `/start <code>` to the bot."""
    from tests.fakes import drain

    resp = await client.post("/api/v1/notification-channels/telegram", headers=headers)
    assert resp.status_code == 201, resp.text
    code = resp.json()["code"]
    before = len(fake.sent(chat_id))
    reply = await post_update(client, update(next_update_id(), chat_id, f"/start {code}"))
    assert reply.status_code == 200, reply.text
    await drain(settings)
    sent = fake.sent(chat_id)
    assert len(sent) == before + 1 and "Linked to" in sent[-1].text, [c.text for c in sent]
    return code
