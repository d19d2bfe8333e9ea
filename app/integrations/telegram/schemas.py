"""The parts of the Bot API's types we read (unknown fields are ignored: Telegram adds them freely)."""

from __future__ import annotations

from typing import Any

import msgspec


class ResponseParameters(msgspec.Struct, omit_defaults=True):
    retry_after: int | None = None
    migrate_to_chat_id: int | None = None


class ApiResponse(msgspec.Struct, omit_defaults=True):
    ok: bool
    result: Any = None
    error_code: int | None = None
    description: str | None = None
    parameters: ResponseParameters | None = None


class User(msgspec.Struct, omit_defaults=True):
    id: int
    is_bot: bool = False
    first_name: str = ""
    username: str | None = None


class Chat(msgspec.Struct, omit_defaults=True):
    id: int
    type: str = "private"
    title: str | None = None
    username: str | None = None
    first_name: str | None = None


class Message(msgspec.Struct, omit_defaults=True):
    message_id: int
    chat: Chat
    date: int = 0
    text: str | None = None
    from_: User | None = msgspec.field(default=None, name="from")
    migrate_to_chat_id: int | None = None


class Update(msgspec.Struct, omit_defaults=True):
    update_id: int
    message: Message | None = None
    edited_message: Message | None = None
    channel_post: Message | None = None


class WebhookInfo(msgspec.Struct, omit_defaults=True):
    url: str = ""
    has_custom_certificate: bool = False
    pending_update_count: int = 0
    last_error_date: int | None = None
    last_error_message: str | None = None
    max_connections: int | None = None
    allowed_updates: list[str] | None = None
