"""HTTP endpoints: webhook endpoints (CRUD, secrets, test), their deliveries, manual retry and recover."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter

from app.db.models.notifications import WebhookAttempt as AttemptRow
from app.db.models.notifications import WebhookDelivery as DeliveryRow
from app.db.models.notifications import WebhookEndpoint as EndpointRow
from app.domain.api import errors_for, write_guard
from app.domain.events.services import EVENT_TYPES
from app.domain.webhooks.schemas import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryPage,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointPage,
    WebhookEndpointSecret,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookEventType,
    WebhookEventTypeList,
    WebhookRecoveryAccepted,
    WebhookRecoveryCreate,
    WebhookRetryAccepted,
    WebhookTestEventSent,
)
from app.domain.webhooks.services import WebhookService


def endpoint_out(e: EndpointRow) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=e.id,
        url=e.url,
        description=e.description,
        event_types=list(e.event_types or []),
        enabled=e.enabled,
        disabled_reason=e.disabled_reason,
        disabled_at=e.disabled_at,
        failing_since=e.failing_since,
        last_success_at=e.last_success_at,
        last_failure_at=e.last_failure_at,
        previous_secret_expires_at=e.previous_secret_expires_at,
        created_at=e.created_at,
        updated_at=e.updated_at,
    )


def attempt_out(a: AttemptRow) -> WebhookAttempt:
    return WebhookAttempt(
        attempt_no=a.attempt_no,
        started_at=a.started_at,
        duration_ms=a.duration_ms,
        status_code=a.status_code,
        outcome=a.outcome,  # type: ignore[arg-type]
        error=a.error,
        response_excerpt=a.response_excerpt,
    )


def delivery_out(d: DeliveryRow, attempts: list[AttemptRow]) -> WebhookDelivery:
    return WebhookDelivery(
        id=d.id,
        endpoint_id=d.endpoint_id,
        event_id=d.event_id,
        event_type=d.event_type,
        status=d.status,  # type: ignore[arg-type]
        attempt_count=d.attempt_count,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        created_at=d.created_at,
        succeeded_at=d.succeeded_at,
        attempts=[attempt_out(a) for a in attempts],
    )


class WebhookEndpointController(Controller):
    path = "/api/v1/webhook-endpoints"
    tags = ["webhooks"]

    @post(
        "/",
        operation_id="createWebhookEndpoint",
        summary="Subscribe a URL to events (the signing secret is returned once)",
        guards=[write_guard],
        responses=errors_for(401, 403, 422),
    )
    async def create(self, data: WebhookEndpointCreate, webhook_service: WebhookService) -> WebhookEndpointWithSecret:
        endpoint, secret = await webhook_service.create(data)
        out = endpoint_out(endpoint)
        return WebhookEndpointWithSecret(**{f: getattr(out, f) for f in out.__struct_fields__}, secret=secret)

    @get("/", operation_id="listWebhookEndpoints", summary="Webhook endpoints", responses=errors_for(401, 422))
    async def list_endpoints(
        self,
        webhook_service: WebhookService,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> WebhookEndpointPage:
        page = await webhook_service.page(cursor, limit)
        return WebhookEndpointPage(items=[endpoint_out(e) for e in page.items], next_cursor=page.next_cursor)

    @get(
        "/{endpoint_id:uuid}",
        operation_id="getWebhookEndpoint",
        summary="One webhook endpoint",
        responses=errors_for(401, 404),
    )
    async def get_endpoint(self, endpoint_id: uuid.UUID, webhook_service: WebhookService) -> WebhookEndpoint:
        return endpoint_out(await webhook_service.get(endpoint_id))

    @patch(
        "/{endpoint_id:uuid}",
        operation_id="updateWebhookEndpoint",
        summary="Change an endpoint's URL, event types, description or enabled state",
        guards=[write_guard],
        responses=errors_for(401, 403, 404, 422),
    )
    async def update(
        self, endpoint_id: uuid.UUID, data: WebhookEndpointUpdate, webhook_service: WebhookService
    ) -> WebhookEndpoint:
        return endpoint_out(await webhook_service.update(endpoint_id, data))

    @delete(
        "/{endpoint_id:uuid}",
        operation_id="deleteWebhookEndpoint",
        summary="Delete an endpoint and its delivery log",
        guards=[write_guard],
        responses=errors_for(401, 403, 404),
    )
    async def delete_endpoint(self, endpoint_id: uuid.UUID, webhook_service: WebhookService) -> None:
        await webhook_service.delete(endpoint_id)

    @post(
        "/{endpoint_id:uuid}/enable",
        operation_id="enableWebhookEndpoint",
        summary="Enable an endpoint (its failure clock restarts)",
        status_code=200,
        guards=[write_guard],
        responses=errors_for(401, 403, 404),
    )
    async def enable(self, endpoint_id: uuid.UUID, webhook_service: WebhookService) -> WebhookEndpoint:
        return endpoint_out(await webhook_service.set_enabled(endpoint_id, True))

    @post(
        "/{endpoint_id:uuid}/disable",
        operation_id="disableWebhookEndpoint",
        summary="Disable an endpoint (nothing is sent to it until it is enabled)",
        status_code=200,
        guards=[write_guard],
        responses=errors_for(401, 403, 404),
    )
    async def disable(self, endpoint_id: uuid.UUID, webhook_service: WebhookService) -> WebhookEndpoint:
        return endpoint_out(await webhook_service.set_enabled(endpoint_id, False))

    @post(
        "/{endpoint_id:uuid}/rotate-secret",
        operation_id="rotateWebhookEndpointSecret",
        summary="Issue a new signing secret (the old one keeps signing beside it for 24 hours)",
        status_code=200,
        guards=[write_guard],
        responses=errors_for(401, 403, 404),
    )
    async def rotate_secret(self, endpoint_id: uuid.UUID, webhook_service: WebhookService) -> WebhookEndpointSecret:
        secret, expires = await webhook_service.rotate_secret(endpoint_id)
        return WebhookEndpointSecret(secret=secret, previous_secret_expires_at=expires)

    @post(
        "/{endpoint_id:uuid}/test",
        operation_id="sendWebhookTestEvent",
        summary="Send a `webhook_endpoint.test` event to this endpoint",
        status_code=202,
        guards=[write_guard],
        responses=errors_for(401, 403, 404, 409),
    )
    async def send_test(self, endpoint_id: uuid.UUID, webhook_service: WebhookService) -> WebhookTestEventSent:
        event_id, delivery_id = await webhook_service.send_test(endpoint_id)
        return WebhookTestEventSent(event_id=event_id, delivery_id=delivery_id)

    @get(
        "/{endpoint_id:uuid}/deliveries",
        operation_id="listWebhookDeliveries",
        summary="Deliveries to an endpoint, newest first, each with its attempts",
        responses=errors_for(401, 404, 422),
    )
    async def deliveries(
        self,
        endpoint_id: uuid.UUID,
        webhook_service: WebhookService,
        status: Literal["pending", "succeeded", "failed"] | None = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> WebhookDeliveryPage:
        page = await webhook_service.deliveries_page(endpoint_id, status, cursor, limit)
        return WebhookDeliveryPage(items=[delivery_out(d, a) for d, a in page.items], next_cursor=page.next_cursor)

    @post(
        "/{endpoint_id:uuid}/recover",
        operation_id="recoverWebhookDeliveries",
        summary="Re-send every delivery that failed since a time",
        status_code=202,
        guards=[write_guard],
        responses=errors_for(401, 403, 404, 409, 422),
    )
    async def recover(
        self, endpoint_id: uuid.UUID, data: WebhookRecoveryCreate, webhook_service: WebhookService
    ) -> WebhookRecoveryAccepted:
        return WebhookRecoveryAccepted(deliveries=await webhook_service.recover(endpoint_id, data.since))


class WebhookDeliveryController(Controller):
    path = "/api/v1/webhook-deliveries"
    tags = ["webhooks"]

    @post(
        "/{delivery_id:uuid}/retry",
        operation_id="retryWebhookDelivery",
        summary="Attempt a delivery once more, now",
        status_code=202,
        guards=[write_guard],
        responses=errors_for(401, 403, 404),
    )
    async def retry(self, delivery_id: uuid.UUID, webhook_service: WebhookService) -> WebhookRetryAccepted:
        await webhook_service.retry(delivery_id)
        return WebhookRetryAccepted(delivery_id=delivery_id)


class WebhookEventTypeController(Controller):
    path = "/api/v1/webhook-event-types"
    tags = ["webhooks"]

    @get(
        "/",
        operation_id="listWebhookEventTypes",
        summary="Event types an endpoint can subscribe to",
        responses=errors_for(401),
    )
    async def list_types(self) -> WebhookEventTypeList:
        return WebhookEventTypeList(items=[WebhookEventType(type=t, description=d) for t, d in EVENT_TYPES.items()])
