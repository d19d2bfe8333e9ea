"""The job context the worker's start-up fills (``JobContext``), and its shut-down."""

from __future__ import annotations

from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.db.engine import create_engine, create_sessionmaker
from app.domain.connections.gateway import MarketplaceGateway
from app.domain.events.context import close_notification_context, open_notification_context
from app.domain.jobcontext import JobContext
from app.domain.webhooks.sender import Resolver
from app.integrations.sheets import TokenCache
from app.integrations.stripe import StripeGateway
from app.lib.crypto import CredentialCipher
from app.lib.outbound import marketplace_http_client
from app.lib.ratelimit import RateLimiter


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
