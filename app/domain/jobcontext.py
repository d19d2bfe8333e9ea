"""The typed context every arq job receives: what the worker's start-up provides, plus arq's own keys.

arq hands each job one dict (``ctx``), the same for every job of a worker process; ``JobContext`` names its
keys and their types so jobs read ``ctx["sessionmaker"]`` checked, not guessed. It is a ``TypedDict``
rather than a dataclass because arq owns the object: it creates the dict, adds ``redis`` before start-up
and ``job_id``/``job_try``/… before each job, and calls ``job(ctx, **kwargs)`` — job names, arguments and
job ids stay exactly as they are in the outbox and in Redis. ``app/worker/context.py`` fills it; it lives
here so ``domain/`` can name it without importing ``worker/``. ``job_session`` is a job's unit of work.
"""

# No ``from __future__ import annotations`` here: TypedDict reads ``NotRequired`` at class creation, and
# string annotations would make every key look required to runtime introspection.
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import NotRequired, TypedDict

import httpx
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.outbox import unit_of_work
from app.domain.connections.services import MarketplaceGateway
from app.integrations.sheets import TokenCache
from app.integrations.stripe import StripeGateway
from app.integrations.telegram.client import TelegramClient
from app.integrations.webhook_sender import Resolver, WebhookClients
from app.lib.crypto import CredentialCipher
from app.lib.ratelimit import RateLimiter


class NotificationContext(TypedDict):
    """What sending alerts and webhooks needs (``app/worker/context.py`` opens and closes it)."""

    resolver: Resolver  # DNS for webhook targets (a local fake in tests)
    webhook_http: WebhookClients
    telegram_http: httpx.AsyncClient
    telegram: TelegramClient | None  # None when no bot is configured


class JobContext(NotificationContext):
    """Everything a job may use; one per worker process, shared by its concurrent jobs (so no sessions here:
    a job opens its own unit of work from ``sessionmaker``)."""

    # arq's own: the queue's Redis client (enqueue, locks), then per job its id and try number.
    redis: ArqRedis
    job_id: NotRequired[str]
    job_try: NotRequired[int]
    enqueue_time: NotRequired[datetime]
    score: NotRequired[int]
    # The worker's start-up.
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cipher: CredentialCipher
    http: httpx.AsyncClient  # marketplace calls
    limiter: RateLimiter  # outbound marketplace budgets
    gateway: MarketplaceGateway
    stripe: NotRequired[StripeGateway | None]  # None while billing is off (nothing calls Stripe)
    sheets_tokens: TokenCache  # Google access tokens of tenants' service accounts, cached for the process


@asynccontextmanager
async def job_session(ctx: JobContext, tenant_id: uuid.UUID | None) -> AsyncIterator[AsyncSession]:
    """One transaction for a job; outbox rows it wrote are enqueued right after commit (the sweep is the
    safety net), so a chain of jobs does not wait for the next sweep at every step."""
    async with unit_of_work(ctx["sessionmaker"], ctx["redis"], tenant_id) as session:
        yield session
