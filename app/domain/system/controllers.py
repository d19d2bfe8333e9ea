"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.exceptions import NotFoundException
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.domain.api import errors_for
from app.domain.system.schemas import HealthStatus
from app.domain.system.services import HealthService
from app.lib.security import metrics_scrape_allowed


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
    async def ready(self, health_service: HealthService) -> HealthStatus:
        return HealthStatus(status="ok", checks=await health_service.ready())


@get("/metrics", operation_id="metrics", summary="Prometheus metrics", tags=["system"], include_in_schema=False)
async def metrics_endpoint(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Only for the scraper: 404 (as if absent) without the metrics token, or from a non-loopback client when
    no token is configured."""
    client = request.scope.get("client")
    token = request.app.state.settings.metrics_token
    if not metrics_scrape_allowed(request.headers.get("authorization", ""), client[0] if client else None, token):
        raise NotFoundException()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
