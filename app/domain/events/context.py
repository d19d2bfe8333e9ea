"""What the alerting jobs need in the worker's context, and their unit of work (commit, then relay)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.outbox import unit_of_work
from app.domain.webhooks.sender import SystemResolver, WebhookClients
from app.integrations.telegram.client import TelegramClient, telegram_http_client


async def open_notification_context(ctx: dict[str, Any], settings: Settings) -> None:
    """Add the webhook HTTP client, the resolver and (when a bot is configured) the Telegram client."""
    ctx.setdefault("resolver", SystemResolver())  # tests put a local fake DNS here
    ctx["webhook_http"] = WebhookClients()
    ctx["telegram_http"] = telegram_http_client()
    ctx["telegram"] = (
        TelegramClient(ctx["telegram_http"], settings.telegram_api_base, settings.telegram_bot_token)
        if settings.telegram_bot_token
        else None
    )


async def close_notification_context(ctx: dict[str, Any]) -> None:
    for name in ("webhook_http", "telegram_http"):
        client = ctx.pop(name, None)
        if client is not None:
            await client.aclose()


@asynccontextmanager
async def job_session(ctx: dict[str, Any], tenant_id: uuid.UUID | None) -> AsyncIterator[AsyncSession]:
    """One transaction for a job; outbox rows it wrote are enqueued right after commit (the sweep is the
    safety net), so a chain of jobs does not wait for the next sweep at every step."""
    async with unit_of_work(ctx["sessionmaker"], ctx["redis"], tenant_id) as session:
        yield session
