"""The Litestar application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from arq.connections import ArqRedis
from litestar import Litestar, asgi
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme, Tag
from litestar.types import Receive, Scope, Send

from app.config import Settings
from app.db.engine import create_engine, create_sessionmaker
from app.lib.redis import redis_client
from app.lib.tokens import AccessTokenCodec
from app.observability.logging import configure_logging
from app.observability.metrics import configure_metrics
from app.server.auth import PUBLIC_PATHS, BearerAuthMiddleware
from app.server.deps import DEPENDENCIES
from app.server.errors import EXCEPTION_HANDLERS
from app.server.middleware import RequestContextMiddleware, add_response_headers
from app.server.routes import ROUTES

API_VERSION = "1.0.0"
TAGS = [
    Tag(name="auth", description="Sign-up, login, token rotation"),
    Tag(name="members", description="People in an organization and their roles"),
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
        app.state.arq = ArqRedis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            yield
        finally:
            await app.state.arq.aclose()
            await app.state.redis.aclose()
            await engine.dispose()

    return lifespan


def _sandbox_mount() -> Any:
    from app.sandbox import create_sandbox_app

    sandbox = create_sandbox_app()

    @asgi("/sandbox", is_mount=True, copy_scope=True, include_in_schema=False)
    async def sandbox_mount(scope: Scope, receive: Receive, send: Send) -> None:
        await sandbox(scope, receive, send)

    return sandbox_mount


def create_app(settings: Settings, *, mount_sandbox: bool = False) -> Litestar:
    configure_logging(settings.log_format, settings.log_level, cache=settings.env != "test")
    configure_metrics("stock-tracker-api")
    handlers: list[Any] = list(ROUTES)
    if mount_sandbox:
        handlers.append(_sandbox_mount())
    cors = (
        CORSConfig(allow_origins=settings.cors_origin_list, allow_credentials=False) if settings.cors_origins else None
    )
    return Litestar(
        route_handlers=handlers,
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            RequestContextMiddleware(),
            DefineMiddleware(BearerAuthMiddleware, exclude=PUBLIC_PATHS),
        ],
        before_send=[add_response_headers],
        lifespan=[_lifespan(settings)],
        state=State(
            {
                "settings": settings,
                "token_codec": AccessTokenCodec(
                    settings.jwt_secret,
                    settings.jwt_issuer,
                    settings.jwt_audience,
                    settings.access_token_ttl_seconds,
                ),
            }
        ),
        cors_config=cors,
        request_max_body_size=settings.request_max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Stock Tracker API",
            version=API_VERSION,
            description="Stock per warehouse, days of cover and alerts for Wildberries and Ozon sellers.",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
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
