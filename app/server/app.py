"""The Litestar application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, asgi
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.types import Receive, Scope, Send

from app.config import Settings
from app.db.engine import create_engine, create_sessionmaker
from app.domain.apikeys import keys as api_keys
from app.domain.connections.gateway import MarketplaceGateway
from app.integrations.stripe import StripeGateway
from app.lib.crypto import CredentialCipher
from app.lib.outbound import marketplace_http_client
from app.lib.ratelimit import RateLimiter
from app.lib.redis import arq_client, redis_client
from app.lib.resp import PipelinedRedis
from app.lib.security import PasswordHasherPool
from app.lib.tokens import AccessTokenCodec
from app.observability.errors import flush_error_tracking, init_error_tracking
from app.observability.logging import configure_logging
from app.observability.metrics import configure_metrics, instruments, seed_counter
from app.server.auth import PUBLIC_PATHS, ApiKeyResolver, BearerAuthMiddleware, TokenCache
from app.server.billing import BillingGuardMiddleware
from app.server.cache import ResponseCacheMiddleware
from app.server.deps import DEPENDENCIES
from app.server.docs_ui import PinnedScalar, PinnedSwagger
from app.server.errors import EXCEPTION_HANDLERS
from app.server.lease import GateLeases, LeaseTable
from app.server.middleware import CORS_EXPOSED_HEADERS, RequestContextMiddleware, add_response_headers
from app.server.openapi import ClosedStructSchemaPlugin, finish_openapi
from app.server.ratelimit import AuthThrottle, RateLimitMiddleware, TenantPlans
from app.server.routes import ROUTES

API_VERSION = "1.0.0"
TAGS = [
    Tag(name="auth", description="Sign-up, login, token rotation"),
    Tag(name="members", description="People in an organization and their roles"),
    Tag(name="connections", description="Marketplace accounts and their credentials"),
    Tag(name="syncs", description="Sync runs: trigger, list, read"),
    Tag(name="products", description="Catalogue with stock per variant × warehouse and its history"),
    Tag(name="warehouses", description="Marketplace and seller warehouses"),
    Tag(name="stock", description="Stock totals"),
    Tag(name="analytics", description="Days of cover and the stock report"),
    Tag(name="api-keys", description="API keys for integrations, and API-call usage"),
    Tag(name="alerts", description="Alert rules (default and overrides), alerts, and what was suppressed"),
    Tag(name="webhooks", description="Signed outgoing webhooks: endpoints, deliveries, retries"),
    Tag(name="notifications", description="Notification channels: linking Telegram chats"),
    Tag(name="telegram", description="The Telegram bot's webhook (called by Telegram)"),
    Tag(name="billing", description="The subscription, plans and usage; Stripe Checkout, portal and webhooks"),
    Tag(name="system", description="Health and operations"),
]


def _lifespan(settings: Settings):
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.redis = redis_client(settings.redis_url)
        # Built without a ping so the API starts (and reports not-ready) while Redis is down.
        app.state.arq = arq_client(settings.redis_url, settings.queue_name)
        app.state.http = marketplace_http_client()
        app.state.limiter = RateLimiter(app.state.redis)
        app.state.gateway = MarketplaceGateway(settings, app.state.http, app.state.limiter)
        # Inbound limiting has its own key prefix and its own Redis-down policy (the outbound one is separate).
        # The per-request gate (limiter + usage + cache lookup) runs on one pipelined connection per process.
        app.state.gate_redis = PipelinedRedis(settings.redis_url)
        app.state.api_limiter = RateLimiter(
            app.state.gate_redis, prefix="rl:api", fail_open=settings.rate_limit_fail_open
        )
        # Token leases: a caller that keeps coming is counted a few requests per gate call (app/server/lease.py).
        app.state.leases = LeaseTable(settings.rate_limit_lease_tokens, settings.rate_limit_lease_seconds)
        app.state.gate_leases = GateLeases(app.state.leases, app.state.gate_redis, settings.redis_url)
        app.state.gate_leases.start()
        # Stripe through the official SDK, only while billing is on (self-hosting: nothing calls Stripe).
        app.state.stripe = StripeGateway.from_settings(settings) if settings.billing_enabled else None
        app.state.api_key_resolver = ApiKeyResolver(
            app.state.sessionmaker,
            api_keys.hash_secret(settings.api_key_secret, settings.jwt_secret),
            engine,
            previous_hash_secrets=api_keys.previous_hash_secrets(
                settings.api_key_secret,
                settings.jwt_secret,
                settings.api_key_secret_previous,
                settings.jwt_secret_previous,
            ),
        )
        finish_openapi(app, PUBLIC_PATHS)
        _seed_metrics(app)
        # Everything built so far lives as long as the process: keep it out of the collector's way, so a
        # full collection under load walks only the objects requests create.
        if settings.env != "test":  # a test process builds many apps; freezing each one's heap would pile up
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            app.state.password_hasher.close()
            await app.state.http.aclose()
            if app.state.stripe is not None:
                await app.state.stripe.aclose()
            await app.state.arq.aclose()
            await app.state.api_key_resolver.aclose()
            await app.state.gate_leases.stop()  # unused tokens given back
            await app.state.gate_redis.aclose()
            await app.state.redis.aclose()
            await engine.dispose()
            flush_error_tracking()

    return lifespan


def _seed_metrics(app: Litestar) -> None:
    """The API's counters that panels read, at 0 before their first event (cache hits and misses of every
    cached route, rate-limit rejections, 500s)."""
    names = {
        handler.opt["cache"]
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if handler.opt.get("cache")
    }
    cache = instruments().cache_requests
    for name in sorted(names):
        for outcome in ("hit", "miss"):
            cache.add(0, {"cache": name, "outcome": outcome})
    seed_counter(instruments().rate_limit_rejections, [{"policy": "api"}])
    seed_counter(instruments().errors, [{"code": "internal_error"}])


def _sandbox_mount() -> Any:
    from app.sandbox import create_sandbox_app

    sandbox = create_sandbox_app()

    @asgi("/sandbox", is_mount=True, copy_scope=True, include_in_schema=False)
    async def sandbox_mount(scope: Scope, receive: Receive, send: Send) -> None:
        await sandbox(scope, receive, send)

    return sandbox_mount


def create_app(
    settings: Settings, *, mount_sandbox: bool = False, auth_throttle: AuthThrottle | None = None
) -> Litestar:
    """The API. ``auth_throttle`` defaults to the production limits; in test mode the per-address login and
    sign-up limits are off, because every test request comes from one address."""
    configure_logging(settings.log_format, settings.log_level, cache=settings.env != "test")
    configure_metrics("stock-tracker-api")
    init_error_tracking(
        settings.sentry_dsn,
        environment=settings.sentry_environment or settings.env,
        release=settings.sentry_release,
        component="api",
    )
    handlers: list[Any] = list(ROUTES)
    if mount_sandbox:
        handlers.append(_sandbox_mount())
    cors = (
        CORSConfig(
            allow_origins=settings.cors_origin_list,
            allow_credentials=False,
            allow_headers=["Authorization", "Content-Type", "If-None-Match", "X-Request-ID"],
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
        if settings.cors_origins
        else None
    )
    plans = TenantPlans(settings)
    codec = AccessTokenCodec(
        settings.jwt_secret,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.access_token_ttl_seconds,
        previous_secrets=settings.jwt_previous_secrets,
    )
    throttle = auth_throttle or AuthThrottle.default(per_address=settings.env != "test")
    return Litestar(
        route_handlers=handlers,
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            RequestContextMiddleware(),
            DefineMiddleware(BearerAuthMiddleware, exclude=PUBLIC_PATHS),
            RateLimitMiddleware(settings, plans, throttle),
            BillingGuardMiddleware(settings),
            ResponseCacheMiddleware(),
        ],
        before_send=[add_response_headers],
        plugins=[ClosedStructSchemaPlugin()],
        lifespan=[_lifespan(settings)],
        state=State(
            {
                "settings": settings,
                "tenant_plans": plans,
                "cipher": CredentialCipher(settings.encryption_key_list),
                "token_codec": codec,
                "token_cache": TokenCache(codec),
                "password_hasher": PasswordHasherPool(settings.password_hash_workers, settings.password_hash_queue),
            }
        ),
        cors_config=cors,
        request_max_body_size=settings.request_max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Stock Tracker API",
            version=API_VERSION,
            description="Stock per warehouse, days of cover and alerts for Wildberries and Ozon sellers.",
            path="/schema",
            render_plugins=[PinnedScalar(), PinnedSwagger(path="/swagger")],
            tags=TAGS,
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http", scheme="bearer", description="An access token or an API key."
                    )
                }
            ),
            security=[{"BearerToken": []}],
            use_handler_docstrings=False,
        ),
        debug=False,
    )
