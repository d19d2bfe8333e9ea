"""`stock-tracker telegram set-webhook [URL]` (and `info`, `delete-webhook`): point the bot at this deployment.

Telegram then POSTs updates to ``<URL>`` with the ``X-Telegram-Bot-Api-Secret-Token`` header set to
``STOCK_TRACKER_TELEGRAM_WEBHOOK_SECRET`` — one consumer of updates, never a poller beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from app.config import PREFIX, Settings, SettingsError, load_settings
from app.integrations.telegram.client import (
    TelegramBadResponse,
    TelegramClient,
    TelegramError,
    telegram_http_client,
)

WEBHOOK_PATH = "/telegram/webhook"


def webhook_url(settings: Settings, url: str | None) -> str:
    if url:
        return url
    if not settings.public_url:
        raise SettingsError(f"give the URL, or set {PREFIX}PUBLIC_URL (the webhook is <PUBLIC_URL>{WEBHOOK_PATH})")
    return settings.public_url.rstrip("/") + WEBHOOK_PATH


def _require_bot(settings: Settings) -> None:
    if not settings.telegram_bot_token:
        raise SettingsError(f"{PREFIX}TELEGRAM_BOT_TOKEN is not set")
    if not settings.telegram_webhook_secret:
        raise SettingsError(f"{PREFIX}TELEGRAM_WEBHOOK_SECRET is not set (Telegram sends it back on every update)")


async def set_webhook(settings: Settings, url: str | None = None) -> str:
    """Register the webhook with the Bot API; returns the URL registered. Raises TelegramError on refusal."""
    _require_bot(settings)
    target = webhook_url(settings, url)
    async with telegram_http_client() as http:
        client = TelegramClient(http, settings.telegram_api_base, settings.telegram_bot_token)
        await client.set_webhook(target, settings.telegram_webhook_secret, allowed_updates=["message", "channel_post"])
    return target


async def webhook_info(settings: Settings) -> str:
    _require_bot(settings)
    async with telegram_http_client() as http:
        info = await TelegramClient(http, settings.telegram_api_base, settings.telegram_bot_token).get_webhook_info()
    last = f", last error: {info.last_error_message}" if info.last_error_message else ""
    return f"url: {info.url or '(none)'}, pending updates: {info.pending_update_count}{last}"


async def delete_webhook(settings: Settings) -> None:
    _require_bot(settings)
    async with telegram_http_client() as http:
        await TelegramClient(http, settings.telegram_api_base, settings.telegram_bot_token).delete_webhook()


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `telegram {set-webhook,info,delete-webhook}` on the CLI's subparsers."""
    tg = sub.add_parser("telegram", help="manage the Telegram bot's webhook")
    actions = tg.add_subparsers(dest="action", required=True)
    sw = actions.add_parser("set-webhook", help="register <URL> (default <PUBLIC_URL>/telegram/webhook) with Telegram")
    sw.add_argument("url", nargs="?", default=None)
    actions.add_parser("info", help="show what Telegram has registered")
    actions.add_parser("delete-webhook", help="stop Telegram sending updates here")


def cmd_telegram(args: argparse.Namespace) -> int:
    """Entry point for `stock-tracker telegram …` (``args.action``, ``args.url``)."""
    settings = load_settings()
    try:
        if args.action == "set-webhook":
            print(f"telegram: webhook set to {asyncio.run(set_webhook(settings, getattr(args, 'url', None)))}")
        elif args.action == "info":
            print(f"telegram: {asyncio.run(webhook_info(settings))}")
        elif args.action == "delete-webhook":
            asyncio.run(delete_webhook(settings))
            print("telegram: webhook deleted")
    except TelegramError as exc:
        print(f"stock-tracker: Telegram refused: {exc.description}", file=sys.stderr)
        return 1
    except TelegramBadResponse as exc:
        print(f"stock-tracker: {exc.detail}", file=sys.stderr)
        return 1
    return 0
