"""HTTP endpoints: linking Telegram chats, listing/removing them, and the bot's webhook."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, delete, get, post

from app.db.models.notifications import NotificationChannel as ChannelRow
from app.domain.api import errors_for, write_guard
from app.domain.telegram.schemas import NotificationChannel, NotificationChannelList, TelegramAck, TelegramLink
from app.domain.telegram.services import LinkService, TelegramWebhookService
from app.lib.tokens import Principal

SECRET_HEADER = "x-telegram-bot-api-secret-token"


def channel_out(c: ChannelRow) -> NotificationChannel:
    return NotificationChannel(
        id=c.id,
        kind="telegram",
        chat_id=c.chat_id,
        chat_title=c.chat_title,
        active=c.active,
        deactivated_reason=c.deactivated_reason,
        last_sent_at=c.last_sent_at,
        created_at=c.created_at,
    )


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
    async def create_telegram_link(self, link_service: LinkService, principal: Principal) -> TelegramLink:
        return await link_service.create_link(principal.user_id)

    @get("/", operation_id="listNotificationChannels", summary="Linked Telegram chats", responses=errors_for(401))
    async def list_channels(self, link_service: LinkService) -> NotificationChannelList:
        return NotificationChannelList(items=[channel_out(c) for c in await link_service.list()])

    @delete(
        "/{channel_id:uuid}",
        operation_id="deleteNotificationChannel",
        summary="Unlink a chat (nothing more is sent there)",
        guards=[write_guard],
        responses=errors_for(401, 403, 404),
    )
    async def delete_channel(self, channel_id: uuid.UUID, link_service: LinkService) -> None:
        await link_service.delete(channel_id)


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
    async def receive(
        self, request: Request[Any, Any, Any], telegram_webhook_service: TelegramWebhookService
    ) -> TelegramAck:
        """Verify, store once (unique ``update_id``), acknowledge; a job does the work."""
        await telegram_webhook_service.receive(request.headers.get(SECRET_HEADER, ""), request.body)
        return TelegramAck()
