"""Bodies of the webhooks API. The signing secret appears only in the create and rotate answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

EventType = Literal[
    "stock.low",
    "stock.out",
    "stock.restored",
    "stock.digest",
    "sync.succeeded",
    "sync.failed",
    "connection.invalid",
    "connection.token_expiring",
    "webhook_endpoint.disabled",
    "billing.plan_changed",
    "billing.payment_failed",
    "report.ready",
    "sheet_link.invalid",
]
Url = Annotated[
    str,
    msgspec.Meta(
        min_length=8,
        max_length=2000,
        pattern=r"^https?://",
        extra_json_schema={"format": "uri"},
        description="An http(s) URL whose host resolves to public addresses only (see the SSRF guard).",
    ),
]
Description = Annotated[str, msgspec.Meta(max_length=500)]
EventTypes = Annotated[list[EventType], msgspec.Meta(max_length=20)]


class WebhookEndpointCreate(msgspec.Struct, forbid_unknown_fields=True):
    url: Url
    event_types: EventTypes = msgspec.field(default_factory=list)
    description: Description = ""


class WebhookEndpointUpdate(msgspec.Struct, forbid_unknown_fields=True):
    url: Url | UnsetType = UNSET
    event_types: EventTypes | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class WebhookEndpoint(msgspec.Struct):
    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failing_since: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookEndpointWithSecret(WebhookEndpoint):
    """Returned once at creation: keep ``secret`` (``whsec_…``) to verify signatures; it is not shown again."""

    secret: str


class WebhookEndpointPage(msgspec.Struct):
    items: list[WebhookEndpoint]
    next_cursor: str | None = None


class WebhookEndpointSecret(msgspec.Struct):
    """The endpoint's new signing secret (shown once); the previous one signs beside it until the time given."""

    secret: str
    previous_secret_expires_at: datetime


class WebhookTestEventSent(msgspec.Struct):
    event_id: uuid.UUID
    delivery_id: uuid.UUID


class WebhookAttempt(msgspec.Struct):
    attempt_no: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    outcome: Literal["success", "retry", "failed", "blocked"]
    error: str | None
    response_excerpt: str | None


class WebhookDelivery(msgspec.Struct):
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    succeeded_at: datetime | None
    attempts: list[WebhookAttempt]


class WebhookDeliveryPage(msgspec.Struct):
    items: list[WebhookDelivery]
    next_cursor: str | None = None


class WebhookRecoveryCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Re-send every delivery to the endpoint that failed at or after ``since``."""

    since: datetime


class WebhookRecoveryAccepted(msgspec.Struct):
    deliveries: int


class WebhookRetryAccepted(msgspec.Struct):
    delivery_id: uuid.UUID
    status: Literal["pending"] = "pending"


class WebhookEventType(msgspec.Struct):
    type: str
    description: str


class WebhookEventTypeList(msgspec.Struct):
    items: list[WebhookEventType]
