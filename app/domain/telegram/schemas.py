"""Bodies of the notification-channel API and the Telegram webhook's acknowledgement."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec


class TelegramLink(msgspec.Struct):
    """Send ``/start <code>`` to the bot (or open ``deep_link``) from the chat that should get alerts."""

    code: str
    deep_link: str | None
    bot_username: str | None
    expires_at: datetime


class NotificationChannel(msgspec.Struct):
    id: uuid.UUID
    kind: Literal["telegram"]
    chat_id: int
    chat_title: str | None
    active: bool
    deactivated_reason: str | None
    last_sent_at: datetime | None
    created_at: datetime


class NotificationChannelList(msgspec.Struct):
    items: list[NotificationChannel]


class TelegramAck(msgspec.Struct):
    ok: bool = True
