"""HTTP endpoints: linking Telegram chats, listing/removing them, and the bot's webhook."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.outbox import add_job
from app.domain.api import errors_for, write_guard
from app.domain.telegram.repositories import TelegramUpdateRepository
from app.domain.telegram.schemas import NotificationChannel, NotificationChannelList, TelegramAck, TelegramLink
from app.domain.telegram.services import LinkService, TelegramNotConfiguredError, bot_username
from app.integrations.telegram.client import TelegramClient
from app.integrations.telegram.schemas import Update
from app.lib import security
from app.lib.errors import AuthenticationError, NotFoundError, ValidationError
from app.lib.tokens import Principal

SECRET_HEADER = "x-telegram-bot-api-secret-token"
UPDATE_JOB = "telegram.update"


class NotificationChannelController(Controller):
    path = "/api/v1/notification-channels"
    tags = ["notifications"]

    @post(
        "/telegram",
        operation_id="createTelegramLink",
        summary="A one-time code (and deep link) that links a Telegram chat to this organization",
        guards=[write_guard],
        responses=errors_for(401, 403, 409),
    )
    async def create_telegram_link(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, principal: Principal
    ) -> TelegramLink:
        settings = request.app.state.settings
        if not settings.telegram_bot_token:
            raise TelegramNotConfiguredError("Set STOCK_TRACKER_TELEGRAM_BOT_TOKEN to use Telegram.")
        code, expires = LinkService(db_session, principal.tenant_id).create_code(principal.user_id)
        client = TelegramClient(request.app.state.http, settings.telegram_api_base, settings.telegram_bot_token)
        username = await bot_username(client, request.app.state.redis)
        deep_link = f"https://t.me/{username}?start={code}" if username else None
        return TelegramLink(code=code, deep_link=deep_link, bot_username=username, expires_at=expires)

    @get("/", operation_id="listNotificationChannels", summary="Linked Telegram chats", responses=errors_for(401))
    async def list_channels(self, db_session: AsyncSession, principal: Principal) -> NotificationChannelList:
        rows = await LinkService(db_session, principal.tenant_id).list()
        return NotificationChannelList(
            items=[
                NotificationChannel(
                    id=c.id,
                    kind="telegram",
                    chat_id=c.chat_id,
                    chat_title=c.chat_title,
                    active=c.active,
                    deactivated_reason=c.deactivated_reason,
                    last_sent_at=c.last_sent_at,
                    created_at=c.created_at,
                )
                for c in rows
            ]
        )

    @delete(
        "/{channel_id:uuid}",
        operation_id="deleteNotificationChannel",
        summary="Unlink a chat (nothing more is sent there)",
        guards=[write_guard],
        responses=errors_for(401, 403, 404),
    )
    async def delete_channel(self, channel_id: uuid.UUID, db_session: AsyncSession, principal: Principal) -> None:
        await LinkService(db_session, principal.tenant_id).delete(channel_id)


class TelegramWebhookController(Controller):
    path = "/telegram"
    tags = ["telegram"]
    security = [{}]

    @post(
        "/webhook",
        operation_id="receiveTelegramUpdate",
        summary="Updates from the Telegram Bot API (checked against the secret token header)",
        status_code=200,
        responses=errors_for(401, 404, 422, api=False),
    )
    async def receive(self, request: Request[Any, Any, Any], db_session: AsyncSession) -> TelegramAck:
        """Verify, store once (unique ``update_id``), acknowledge; a job does the work."""
        settings = request.app.state.settings
        if not settings.telegram_bot_token or not settings.telegram_webhook_secret:
            raise NotFoundError("The Telegram bot is not configured.")
        given = request.headers.get(SECRET_HEADER, "")
        if not given or not security.constant_time_equal(given, settings.telegram_webhook_secret):
            raise AuthenticationError("Wrong or missing X-Telegram-Bot-Api-Secret-Token.")
        body = await request.body()
        try:
            update = msgspec.json.decode(body, type=Update)
            payload = msgspec.json.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ValidationError("The body is not a Telegram update.") from exc
        message = update.message or update.channel_post or update.edited_message
        chat_id = message.chat.id if message else None
        if await TelegramUpdateRepository(db_session).store(update.update_id, chat_id, payload):
            add_job(db_session, UPDATE_JOB, f"tg-update:{update.update_id}", update_id=update.update_id)
        return TelegramAck()
