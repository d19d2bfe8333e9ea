"""Use-cases of the Telegram area: link codes, channels, the bot's webhook, sending notifications (and digests),
manual sync."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import msgspec
import structlog
from arq import Retry
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.models import Connection
from app.db.models.notifications import NotificationChannel, TelegramLinkCode
from app.db.outbox import add_job
from app.db.repository import TenantRepository
from app.domain.events.services import SuppressionRepository, alert_instruments, quiet_hours_for
from app.domain.jobcontext import JobContext, job_session
from app.domain.sync.services import SyncTrigger, request_manual_sync
from app.domain.telegram import formatting
from app.domain.telegram.repositories import (
    ChannelRepository,
    LinkCodeRepository,
    NotificationRepository,
    TelegramUpdateRepository,
)
from app.domain.telegram.schemas import TelegramLink
from app.integrations.telegram.client import (
    TelegramBlocked,
    TelegramChatMigrated,
    TelegramClient,
    TelegramError,
    TelegramRetryAfter,
)
from app.integrations.telegram.schemas import Update
from app.lib import security
from app.lib.clock import utcnow
from app.lib.errors import AuthenticationError, ConflictError, NotFoundError, ValidationError
from app.lib.ids import uuid7

log = structlog.get_logger(__name__)
LINK_TTL = timedelta(minutes=15)
FLOOD_KEY = "telegram:flood_until"
BOT_USERNAME_KEY = "telegram:bot_username"
SEND_BATCH = 200
UPDATE_JOB = "telegram.update"


class TelegramNotConfiguredError(ConflictError):
    code = "telegram_not_configured"
    title = "The Telegram bot is not configured"


def hash_code(code: str) -> str:
    return security.sha256_hex(code)


class LinkService:
    """Linking Telegram chats to the organization, listing and unlinking them."""

    def __init__(
        self, session: AsyncSession, tenant_id: uuid.UUID, settings: Settings, http: httpx.AsyncClient, redis: Any
    ) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.settings = settings
        self.http = http
        self.redis = redis
        self.channels = ChannelRepository(session, tenant_id)

    def create_code(self, user_id: uuid.UUID | None) -> tuple[str, datetime]:
        """A one-time code for `/start <code>` (deep-link safe alphabet); only its hash is stored."""
        code = secrets.token_urlsafe(24)
        expires = utcnow() + LINK_TTL
        LinkCodeRepository(self.session, self.tenant_id).add(
            TelegramLinkCode(id=uuid7(), code_hash=hash_code(code), expires_at=expires, created_by_user_id=user_id)
        )
        return code, expires

    async def create_link(self, user_id: uuid.UUID | None) -> TelegramLink:
        """A link code and the bot's deep link carrying it (no deep link when Telegram does not answer)."""
        if not self.settings.telegram_bot_token:
            raise TelegramNotConfiguredError("Set STOCK_TRACKER_TELEGRAM_BOT_TOKEN to use Telegram.")
        code, expires = self.create_code(user_id)
        client = TelegramClient(self.http, self.settings.telegram_api_base, self.settings.telegram_bot_token)
        username = await bot_username(client, self.redis)
        deep_link = f"https://t.me/{username}?start={code}" if username else None
        return TelegramLink(code=code, deep_link=deep_link, bot_username=username, expires_at=expires)

    async def list(self) -> list[NotificationChannel]:
        return await self.channels.all()

    async def delete(self, channel_id: uuid.UUID) -> None:
        if not await self.channels.delete(channel_id):
            raise NotFoundError("No such notification channel.")


class TelegramWebhookService:
    """The bot's webhook: verify the secret token, store each update once, hand it to a job."""

    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.session = session
        self.settings = settings

    async def receive(self, secret_token: str, read_body: Callable[[], Awaitable[bytes]]) -> None:
        """Verify, store once (unique ``update_id``); the job is enqueued only for a new update. The body is
        read only once the caller proved it knows the secret."""
        if not self.settings.telegram_bot_token or not self.settings.telegram_webhook_secret:
            raise NotFoundError("The Telegram bot is not configured.")
        if not secret_token or not security.constant_time_equal(secret_token, self.settings.telegram_webhook_secret):
            raise AuthenticationError("Wrong or missing X-Telegram-Bot-Api-Secret-Token.")
        body = await read_body()
        try:
            update = msgspec.json.decode(body, type=Update)
            payload = msgspec.json.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValidationError("The body is not a Telegram update.") from exc
        message = update.message or update.channel_post or update.edited_message
        chat_id = message.chat.id if message else None
        if await TelegramUpdateRepository(self.session).store(update.update_id, chat_id, payload):
            add_job(self.session, UPDATE_JOB, f"tg-update:{update.update_id}", update_id=update.update_id)


async def bot_username(client: TelegramClient, redis: Any) -> str | None:
    """The bot's @username for deep links (getMe, cached for a day); None when Telegram does not answer."""
    try:
        cached = await redis.get(BOT_USERNAME_KEY)
        if cached:
            return cached.decode() if isinstance(cached, bytes) else str(cached)
    except Exception as exc:  # Redis down: ask Telegram
        log.warning("telegram.cache_unavailable", error=type(exc).__name__)
    try:
        me = await client.get_me()
    except TelegramError as exc:
        log.warning("telegram.get_me_failed", error=exc.description)
        return None
    if me.username:
        try:
            await redis.set(BOT_USERNAME_KEY, me.username, ex=86400)
        except Exception as exc:
            log.warning("telegram.cache_unavailable", error=type(exc).__name__)
    return me.username


async def trigger_manual_syncs(
    session: AsyncSession, tenant_id: uuid.UUID, *, billing_enabled: bool = False
) -> list[SyncTrigger]:
    """Start a manual sync of every connection, exactly as ``POST /connections/{id}/syncs`` does."""
    connections = await _Connections(session, tenant_id).list(order_by=Connection.created_at)
    return [
        await request_manual_sync(session, tenant_id, conn, billing_enabled=billing_enabled) for conn in connections
    ]


class _Connections(TenantRepository[Connection]):
    model = Connection


async def _connection_names(s: AsyncSession, tenant_id: uuid.UUID, datas: list[dict[str, Any]]) -> dict[str, str]:
    """Names for the connections events mention by id (sync and connection events carry only the id)."""
    ids: set[uuid.UUID] = set()
    for data in datas:
        raw = data.get("connection_id")
        if raw and not data.get("connection_name"):
            try:
                ids.add(uuid.UUID(str(raw)))
            except ValueError:
                continue
    if not ids:
        return {}
    rows = await _Connections(s, tenant_id).list(Connection.id.in_(ids))
    return {str(c.id): c.name for c in rows}


def _named(data: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    name = names.get(str(data.get("connection_id")))
    return {**data, "connection_name": name} if name and not data.get("connection_name") else data


class NotificationSender:
    """Sends a channel's due notifications: pending ones as one message, ended quiet hours as one digest."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx
        self.client: TelegramClient | None = ctx.get("telegram")
        self.redis = ctx["redis"]

    async def _wait_for_flood_control(self) -> None:
        until = await self.redis.get(FLOOD_KEY)
        if until:
            remaining = float(until) - time.time()
            if remaining > 0:
                raise Retry(defer=remaining + 0.1)

    async def send_due(self, tenant_id: uuid.UUID, channel_id: uuid.UUID) -> int:
        if self.client is None:
            log.warning("telegram.not_configured")
            return 0
        await self._wait_for_flood_control()
        now = utcnow()
        async with job_session(self.ctx, tenant_id) as s:
            channel = await ChannelRepository(s, tenant_id).get(channel_id)
            if channel is None or not channel.active:
                return 0
            notes = NotificationRepository(s, tenant_id)
            rows = await notes.take_due(channel_id, now, SEND_BATCH)
            if not rows:
                return 0
            names = await _connection_names(s, tenant_id, [e.data for _, e in rows])
            pending = [(n, e) for n, e in rows if n.status == "pending"]
            held = [(n, e) for n, e in rows if n.status == "held"]
            messages: list[str] = []
            if held:
                quiet = await quiet_hours_for(s, tenant_id)
                messages += formatting.digest(
                    [(e.type, _named(e.data, names)) for _, e in held],
                    f"{quiet.start:%H:%M}" if quiet else None,
                    f"{quiet.end:%H:%M}" if quiet else None,
                )
            if pending:
                messages += formatting.batch([(e.type, _named(e.data, names)) for _, e in pending])
            try:
                chat_id = await self._send_all(s, tenant_id, channel, messages)
            except TelegramBlocked as exc:
                await self._deactivate(s, tenant_id, channel, exc.description)
                return 0
            except TelegramRetryAfter as exc:
                alert_instruments().telegram_messages.add(1, {"outcome": "rate_limited"})
                delay = float(exc.retry_after or 5)
                await self.redis.set(FLOOD_KEY, str(time.time() + delay), px=int(delay * 1000))
                raise Retry(defer=delay) from None
            except TelegramError as exc:
                if exc.transient:
                    alert_instruments().telegram_messages.add(1, {"outcome": "error"})
                    raise Retry(defer=30) from None
                # A permanent refusal of these messages (e.g. 400 chat not found): drop them, log why.
                await self._drop(s, tenant_id, channel.id, rows, exc.description)
                return 0
            await notes.mark([n.id for n, _ in pending], "sent", now)
            await notes.mark([n.id for n, _ in held], "sent", now, in_digest=True)
            channel.last_sent_at = now
        log.info("telegram.sent", channel_id=str(channel_id), messages=len(messages), chat=chat_id is not None)
        return len(messages)

    async def _send_all(
        self, s: AsyncSession, tenant_id: uuid.UUID, channel: NotificationChannel, messages: list[str]
    ) -> int:
        assert self.client is not None
        chat_id = channel.chat_id
        for text in messages:
            try:
                await self.client.send_message(chat_id, text)
            except TelegramChatMigrated as exc:
                chat_id = int(exc.migrate_to_chat_id or chat_id)
                await ChannelRepository(s, tenant_id).migrate(channel.id, chat_id)
                alert_instruments().telegram_messages.add(1, {"outcome": "migrated"})
                await self.client.send_message(chat_id, text)
            alert_instruments().telegram_messages.add(1, {"outcome": "sent"})
        return chat_id

    async def _deactivate(self, s: AsyncSession, tenant_id: uuid.UUID, channel: NotificationChannel, why: str) -> None:
        alert_instruments().telegram_messages.add(1, {"outcome": "blocked"})
        await ChannelRepository(s, tenant_id).deactivate(channel.id, f"Telegram refused: {why}")
        dropped = await NotificationRepository(s, tenant_id).drop_for_channel(channel.id)
        log_ = SuppressionRepository(s, tenant_id)
        for event_id, event_type in dropped:
            log_.log(
                "channel_inactive",
                f"The bot was blocked or removed from the chat ({why}); the chat was deactivated.",
                event_id=event_id,
                event_type=event_type,
                channel_id=channel.id,
            )
        log.warning("telegram.channel_deactivated", channel_id=str(channel.id))

    async def _drop(
        self, s: AsyncSession, tenant_id: uuid.UUID, channel_id: uuid.UUID, rows: list[Any], why: str
    ) -> None:
        alert_instruments().telegram_messages.add(1, {"outcome": "error"})
        await NotificationRepository(s, tenant_id).mark([n.id for n, _ in rows], "dropped", utcnow())
        log_ = SuppressionRepository(s, tenant_id)
        for n, e in rows:
            log_.log(
                "telegram_error",
                f"Telegram refused the message: {why}",
                event_id=n.event_id,
                event_type=e.type,
                channel_id=channel_id,
            )
