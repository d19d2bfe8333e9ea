"""The job context the worker's start-up fills (``JobContext``, with its ``NotificationContext``), and its
shut-down."""

from __future__ import annotations

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db.engine import create_engine, create_sessionmaker
from app.domain.connections.gateway import MarketplaceGateway
from app.domain.jobcontext import JobContext, NotificationContext
from app.integrations.sheets import TokenCache
from app.integrations.stripe import StripeGateway
from app.integrations.telegram.client import TelegramClient, telegram_http_client
from app.integrations.webhook_sender import Resolver, SystemResolver, WebhookClients
from app.lib.crypto import CredentialCipher
from app.lib.outbound import marketplace_http_client
from app.lib.ratelimit import RateLimiter


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


def open_job_context(
    settings: Settings, redis: ArqRedis, *, resolver: Resolver | None = None, engine: AsyncEngine | None = None
) -> JobContext:
    """Everything ``JobContext`` promises, built once per worker process (``engine`` defaults to one sized by
    the settings; ``resolver`` to the system's DNS)."""
    engine = create_engine(settings) if engine is None else engine
    http = marketplace_http_client()
    limiter = RateLimiter(redis)
    notification = open_notification_context(settings, resolver)
    stripe = StripeGateway.from_settings(settings) if settings.billing_enabled else None
    return JobContext(
        redis=redis,
        settings=settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        cipher=CredentialCipher(settings.encryption_key_list),
        http=http,
        limiter=limiter,
        gateway=MarketplaceGateway(settings, http, limiter),
        sheets_tokens=TokenCache(),
        resolver=notification["resolver"],
        webhook_http=notification["webhook_http"],
        telegram_http=notification["telegram_http"],
        telegram=notification["telegram"],
        stripe=stripe,
    )


async def close_job_context(ctx: JobContext) -> None:
    """Close what ``open_job_context`` opened (not ``redis``: its owner, arq or the caller, closes it)."""
    await close_notification_context(ctx)
    stripe = ctx.get("stripe")
    if stripe is not None:
        await stripe.aclose()
    http = ctx.get("http")
    if http is not None:
        await http.aclose()
    engine = ctx.get("engine")
    if engine is not None:
        await engine.dispose()
