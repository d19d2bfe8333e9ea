"""The Telegram Bot API over httpx, decoded into msgspec Structs (one bot per deployment)."""

from app.integrations.telegram.client import (
    TelegramBlocked,
    TelegramChatMigrated,
    TelegramClient,
    TelegramError,
    TelegramRetryAfter,
    install_token_redaction,
)

__all__ = [
    "TelegramBlocked",
    "TelegramChatMigrated",
    "TelegramClient",
    "TelegramError",
    "TelegramRetryAfter",
    "install_token_redaction",
]
