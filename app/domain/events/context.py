"""What the alerting jobs need in the worker's context, and their unit of work (commit, then relay)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.outbox import unit_of_work
from app.domain.jobcontext import JobContext, NotificationContext
from app.domain.webhooks.sender import Resolver, SystemResolver, WebhookClients
from app.integrations.telegram.client import TelegramClient, telegram_http_client


def open_notification_context(settings: Settings, resolver: Resolver | None = None) -> NotificationContext:
    """The webhook HTTP clients, the resolver (tests pass a local fake DNS) and, when a bot is configured,
    the Telegram client."""
    telegram_http = telegram_http_client()
    return NotificationContext(
        resolver=resolver if resolver is not None else SystemResolver(),
        webhook_http=WebhookClients(),
        telegram_http=telegram_http,
        telegram=(
            TelegramClient(telegram_http, settings.telegram_api_base, settings.telegram_bot_token)
            if settings.telegram_bot_token
            else None
        ),
    )


async def close_notification_context(ctx: NotificationContext) -> None:
    """Close the clients that were opened (a start-up that failed half-way opened only some)."""
    webhook_http, telegram_http = ctx.get("webhook_http"), ctx.get("telegram_http")
    if webhook_http is not None:
        await webhook_http.aclose()
    if telegram_http is not None:
        await telegram_http.aclose()


@asynccontextmanager
async def job_session(ctx: JobContext, tenant_id: uuid.UUID | None) -> AsyncIterator[AsyncSession]:
    """One transaction for a job; outbox rows it wrote are enqueued right after commit (the sweep is the
    safety net), so a chain of jobs does not wait for the next sweep at every step."""
    async with unit_of_work(ctx["sessionmaker"], ctx["redis"], tenant_id) as session:
        yield session
