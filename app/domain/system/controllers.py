"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Controller, Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.domain.api import errors_for
from app.lib.errors import ServiceUnavailableError


class HealthStatus(msgspec.Struct):
    status: str
    checks: dict[str, str] = msgspec.field(default_factory=dict)


async def _check_db(request: Request[Any, Any, Any]) -> None:
    async with request.app.state.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _check_redis(request: Request[Any, Any, Any]) -> None:
    await request.app.state.redis.ping()


class HealthController(Controller):
    path = "/health"
    tags = ["system"]

    @get("/live", operation_id="healthLive", summary="The process is up", responses=errors_for(api=False))
    async def live(self) -> HealthStatus:
        return HealthStatus(status="ok")

    @get(
        "/ready",
        operation_id="healthReady",
        summary="The database and Redis answer",
        responses=errors_for(503, api=False),
    )
    async def ready(self, request: Request[Any, Any, Any]) -> HealthStatus:
        timeout = request.app.state.settings.health_timeout_seconds
        checks: dict[str, str] = {}
        for name, check in (("database", _check_db), ("redis", _check_redis)):
            try:
                await asyncio.wait_for(check(request), timeout)
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unavailable ({type(exc).__name__})"
        failed = [k for k, v in checks.items() if v != "ok"]
        if failed:
            raise ServiceUnavailableError(
                "Not ready: " + ", ".join(f"{k} {checks[k]}" for k in failed), headers={"Retry-After": "5"}
            )
        return HealthStatus(status="ok", checks=checks)


@get("/metrics", operation_id="metrics", summary="Prometheus metrics", tags=["system"], include_in_schema=False)
async def metrics_endpoint() -> Response[bytes]:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
