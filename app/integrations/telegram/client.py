"""A small Bot API client: POST JSON (or multipart for files), decode into Structs, raise typed errors.

The bot token is part of every URL (``/bot<token>/<method>``), so httpx's request log line would carry it:
``install_token_redaction`` masks it in those records, and nothing here puts a URL into an error message.
"""

from __future__ import annotations

import logging
import re
from typing import Any, TypeVar

import httpx
import msgspec

from app.integrations.telegram.schemas import ApiResponse, Message, User, WebhookInfo
from app.lib.errors import BadGatewayError

T = TypeVar("T")
_BOT_TOKEN = re.compile(r"/bot[0-9]+:[A-Za-z0-9_-]+")
_DECODER = msgspec.json.Decoder(ApiResponse)
DEFAULT_RETRY_AFTER = 5


class TelegramError(Exception):
    """The Bot API refused a call (``error_code`` is Telegram's, None when no answer came back)."""

    def __init__(
        self,
        method: str,
        description: str,
        error_code: int | None = None,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(f"{method}: {error_code or 'no answer'} {description}")
        self.method = method
        self.description = description
        self.error_code = error_code
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    @property
    def transient(self) -> bool:
        return self.error_code is None or self.error_code >= 500


class TelegramBadResponse(BadGatewayError):
    """A 2xx answer that is not the Bot API response the method promises (502 at the API, naming Telegram).

    Not a ``TelegramError``: Telegram did not refuse anything, and callers that degrade on a refusal must not
    hide a broken answer."""

    def __init__(self, method: str) -> None:
        super().__init__("telegram", f"Telegram answered {method} with something that is not a Bot API response.")
        self.method = method


class TelegramRetryAfter(TelegramError):
    """429 flood control: nothing may be sent for ``retry_after`` seconds (possibly bot-wide)."""


class TelegramBlocked(TelegramError):
    """403: the user blocked the bot or it was removed from the chat — permanent for this chat."""


class TelegramChatMigrated(TelegramError):
    """The group became a supergroup: send to ``migrate_to_chat_id`` from now on."""


class _RedactBotToken(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                _BOT_TOKEN.sub("/bot[redacted]", str(a)) if isinstance(a, str | httpx.URL) else a for a in record.args
            )
        if isinstance(record.msg, str) and "/bot" in record.msg:
            record.msg = _BOT_TOKEN.sub("/bot[redacted]", record.msg)
        return True


def install_token_redaction() -> None:
    """Mask bot tokens in httpx's request log lines (idempotent)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactBotToken) for f in logger.filters):
        logger.addFilter(_RedactBotToken())


def _error(method: str, status: int, body: ApiResponse | None) -> TelegramError:
    code = (body.error_code if body else None) or status
    description = (body.description if body else None) or f"HTTP {status}"
    params = body.parameters if body else None
    retry_after = params.retry_after if params else None
    migrate = params.migrate_to_chat_id if params else None
    if code == 429:
        return TelegramRetryAfter(method, description, code, retry_after or DEFAULT_RETRY_AFTER)
    if migrate is not None:
        return TelegramChatMigrated(method, description, code, migrate_to_chat_id=migrate)
    if code == 403:
        return TelegramBlocked(method, description, code)
    return TelegramError(method, description, code)


class TelegramClient:
    def __init__(self, http: httpx.AsyncClient, api_base: str, token: str, *, timeout: float = 15.0) -> None:
        if not token:
            raise ValueError("a bot token is required")
        self._http = http
        self._base = f"{api_base.rstrip('/')}/bot{token}"
        self._timeout = timeout
        install_token_redaction()

    async def call(self, method: str, payload: dict[str, Any] | None = None, *, files: Any = None) -> Any:
        """One Bot API call; returns ``result`` or raises a ``TelegramError``."""
        try:
            if files is not None:
                data = {k: str(v) for k, v in (payload or {}).items() if v is not None}
                resp = await self._http.post(f"{self._base}/{method}", data=data, files=files, timeout=self._timeout)
            else:
                resp = await self._http.post(f"{self._base}/{method}", json=payload or {}, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise TelegramError(method, type(exc).__name__) from None
        try:
            body: ApiResponse | None = _DECODER.decode(resp.content)
        except msgspec.DecodeError:  # ValidationError included
            body = None
        if body is None and resp.status_code < 300:
            raise TelegramBadResponse(method)
        if body is None or not body.ok or resp.status_code >= 400:
            raise _error(method, resp.status_code, body)
        return body.result

    @staticmethod
    def _result(method: str, result: Any, type_: type[T]) -> T:
        try:
            return msgspec.convert(result, type_)
        except msgspec.ValidationError:
            raise TelegramBadResponse(method) from None

    async def get_me(self) -> User:
        return self._result("getMe", await self.call("getMe"), User)

    async def send_message(
        self, chat_id: int, text: str, *, parse_mode: str | None = "HTML", disable_notification: bool = False
    ) -> Message:
        payload: dict[str, Any] = {
            "chat_id": chat_id,
            "text": text,
            "link_preview_options": {"is_disabled": True},
            "disable_notification": disable_notification,
        }
        if parse_mode:
            payload["parse_mode"] = parse_mode
        return self._result("sendMessage", await self.call("sendMessage", payload), Message)

    async def send_document(
        self,
        chat_id: int,
        filename: str,
        content: bytes,
        *,
        caption: str | None = None,
        mime_type: str = "application/octet-stream",
    ) -> Message:
        payload = {"chat_id": chat_id, "caption": caption, "parse_mode": "HTML" if caption else None}
        result = await self.call("sendDocument", payload, files={"document": (filename, content, mime_type)})
        return self._result("sendDocument", result, Message)

    async def set_webhook(self, url: str, secret_token: str, *, allowed_updates: list[str] | None = None) -> bool:
        payload = {
            "url": url,
            "secret_token": secret_token,
            "allowed_updates": allowed_updates or ["message"],
            "max_connections": 40,
        }
        return self._result("setWebhook", await self.call("setWebhook", payload), bool)

    async def delete_webhook(self) -> bool:
        return self._result("deleteWebhook", await self.call("deleteWebhook", {"drop_pending_updates": False}), bool)

    async def get_webhook_info(self) -> WebhookInfo:
        return self._result("getWebhookInfo", await self.call("getWebhookInfo"), WebhookInfo)


def telegram_http_client() -> httpx.AsyncClient:
    """The Bot API answers quickly; redirects are never followed."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=5.0, read=20.0, write=20.0, pool=10.0),
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        follow_redirects=False,
    )
