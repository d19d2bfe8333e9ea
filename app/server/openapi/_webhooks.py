"""The document's ``webhooks`` section (OpenAPI 3.1): every event we POST to a subscribed endpoint, its body
(``{id, type, created_at, tenant_id, data}``, the same on every attempt) and the Standard Webhooks headers.
The payload schemas mirror what ``app/domain/alerts/evaluation.py``, ``app/domain/sync/pipeline.py``,
``app/domain/events/jobs.py`` and ``app/domain/webhooks/`` put in ``data``; how to verify a delivery is
``docs/webhooks.md``."""

from __future__ import annotations

from typing import Any

from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    PathItem,
    RequestBody,
)
from litestar.openapi.spec import Schema as SchemaObject

from app.domain.events.types import EVENT_TYPES

_REF = "#/components/schemas/{}"
_UUID = {"type": "string", "format": "uuid"}
_TIME = {"type": "string", "format": "date-time"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [schema, {"type": "null"}]}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": [k for k in properties if k not in optional],
    }


_MARKETPLACE = {"type": "string", "enum": ["wildberries", "ozon"]}
_EVENT_PRODUCT = _object(
    {
        "id": _UUID,
        "external_id": {"type": "string", "description": "WB nmID / Ozon product_id"},
        "vendor_code": _nullable({"type": "string"}),
        "title": _nullable({"type": "string"}),
        "marketplace": _MARKETPLACE,
    }
)
_EVENT_WAREHOUSE = _object({"id": _UUID, "name": _nullable({"type": "string"})})
_EVENT_THRESHOLD = _object(
    {
        "scope": {"type": "string", "enum": ["default", "product", "warehouse"]},
        "rule_id": _nullable(_UUID),
        "units_below": _nullable({"type": "integer"}),
        "days_of_cover_below": _nullable({"type": "number"}),
        "cover_window_days": _nullable({"type": "integer"}),
        "hysteresis_units": _nullable({"type": "integer"}),
        "hysteresis_days": _nullable({"type": "number"}),
    }
)
# Named parts (an inline nullable object makes generators emit `…Type0` classes).
PARTS = {"EventProduct": _EVENT_PRODUCT, "EventWarehouse": _EVENT_WAREHOUSE, "EventThreshold": _EVENT_THRESHOLD}
_STOCK_ALERT = _object(
    {
        "alert_id": _UUID,
        "level": {"type": "string", "enum": ["low", "out"]},
        "connection_id": _UUID,
        "sync_run_id": _UUID,
        "product": {"$ref": _REF.format("EventProduct")},
        "warehouse": _nullable({"$ref": _REF.format("EventWarehouse")}),
        "quantity": {"type": "integer"},
        "days_of_cover": _nullable({"type": "number"}),
        "threshold": {"$ref": _REF.format("EventThreshold")},
        "opened_at": {**_TIME, "description": "When the alert opened (`stock.restored` only)."},
    },
    optional=("opened_at",),
)
_SYNC = _object(
    {
        "run_id": _UUID,
        "connection_id": _UUID,
        "status": {"type": "string", "enum": ["succeeded", "partially_failed", "failed"]},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "error_code": _nullable({"type": "string"}),
    }
)
PAYLOADS: dict[str, tuple[str, dict[str, Any]]] = {
    "stock.low": ("StockAlertEventData", _STOCK_ALERT),
    "stock.out": ("StockAlertEventData", _STOCK_ALERT),
    "stock.restored": ("StockAlertEventData", _STOCK_ALERT),
    "sync.succeeded": ("SyncEventData", _SYNC),
    "sync.failed": ("SyncEventData", _SYNC),
    "connection.invalid": (
        "ConnectionInvalidEventData",
        _object(
            {
                "connection_id": _UUID,
                "marketplace": _MARKETPLACE,
                "status": {"type": "integer", "description": "The marketplace's HTTP status (401 or 403)"},
                "reason": {"type": "string"},
            }
        ),
    ),
    "connection.token_expiring": (
        "TokenExpiringEventData",
        _object(
            {
                "connection_id": _UUID,
                "name": {"type": "string"},
                "marketplace": _MARKETPLACE,
                "expires_at": _TIME,
                "days_left": {"type": "integer"},
                "threshold_days": {"type": "integer", "description": "7, then 1"},
            }
        ),
    ),
    "webhook_endpoint.disabled": (
        "EndpointDisabledEventData",
        _object(
            {
                "endpoint_id": _UUID,
                "url": {"type": "string"},
                "description": _nullable({"type": "string"}),
                "failing_since": _TIME,
                "reason": {"type": "string"},
            }
        ),
    ),
    "billing.plan_changed": (
        "PlanChangedEventData",
        _object(
            {
                "plan_change_id": _UUID,
                "from_plan": _nullable({"type": "string"}),
                "to_plan": {"type": "string"},
                "from_status": _nullable({"type": "string"}),
                "to_status": {"type": "string"},
                "cause": {"type": "string", "description": "What caused it: a Stripe event, a user's change, …"},
                "read_only": {"type": "boolean", "description": "The organization is read-only from now on."},
                "current_period_end": _nullable(_TIME),
            }
        ),
    ),
    "billing.payment_failed": (
        "PaymentFailedEventData",
        _object(
            {
                "invoice_id": {"type": "string"},
                "amount_due": {"type": "integer", "description": "In the currency's smallest unit (cents)."},
                "currency": {"type": "string"},
                "attempt_count": {"type": "integer"},
                "next_payment_attempt": _nullable(_TIME),
                "hosted_invoice_url": _nullable({"type": "string"}),
                "plan": {"type": "string"},
                "status": {"type": "string"},
            }
        ),
    ),
    "report.ready": (
        "ReportReadyEventData",
        _object(
            {
                "report": {"type": "string", "enum": ["stock"]},
                "format": {"type": "string", "enum": ["xlsx"]},
                "date": {"type": "string", "format": "date", "description": "The day in the organization's zone."},
                "timezone": {"type": "string", "description": "IANA zone, e.g. Europe/Moscow"},
                "lang": {"type": "string", "enum": ["ru", "en"]},
                "window_days": {"type": "integer", "enum": [7, 14, 30]},
                "download_url": {"type": "string", "description": "Signed link; no other credential needed."},
                "expires_at": _TIME,
            }
        ),
    ),
    "sheet_link.invalid": (
        "SheetLinkInvalidEventData",
        _object(
            {
                "sheet_link_id": _UUID,
                "spreadsheet_id": {"type": "string"},
                "sheet_name": {"type": "string"},
                "client_email": {"type": "string", "description": "The service account the sheet must be shared with."},
                "reason": {"type": "string"},
            }
        ),
    ),
    "stock.digest": (
        "StockDigestEventData",
        _object(
            {
                "reason": {
                    "type": "string",
                    "enum": ["first_sync", "resumed", "flood"],
                    "description": "A connection's first sync, the first after a long pause, or a sync that "
                    "would open more alerts than the organization's cap: one message instead of many.",
                },
                "connection_id": _UUID,
                "connection_name": _nullable({"type": "string"}),
                "sync_run_id": _UUID,
                "opened": _object({"low": {"type": "integer"}, "out": {"type": "integer"}}),
                "escalated": {"type": "integer"},
                "restored": {"type": "integer"},
                "open_now": _object({"low": {"type": "integer"}, "out": {"type": "integer"}}),
                "examples": {
                    "type": "array",
                    "items": _object(
                        {
                            "alert_id": _UUID,
                            "level": {"type": "string", "enum": ["low", "out"]},
                            "product": {"$ref": _REF.format("EventProduct")},
                            "warehouse": _nullable({"$ref": _REF.format("EventWarehouse")}),
                            "quantity": {"type": "integer"},
                        }
                    ),
                },
                "report_url": {"type": "string"},
                "alerts_url": {"type": "string", "description": "Re-read the open alerts here."},
            }
        ),
    ),
    "webhook_endpoint.test": (
        "EndpointTestEventData",
        _object({"endpoint_id": _UUID, "message": {"type": "string"}}),
    ),
}
_DESCRIPTIONS = {
    **EVENT_TYPES,
    "webhook_endpoint.test": "Sent by `POST /webhook-endpoints/{id}/test` to that endpoint only.",
}


def _envelope(event_type: str, data_schema: str) -> dict[str, Any]:
    return _object(
        {
            "id": {**_UUID, "description": "The event's id: also `webhook-id`, the same on every retry."},
            "type": {"type": "string", "const": event_type},
            "created_at": _TIME,
            "tenant_id": _UUID,
            "data": {"$ref": _REF.format(data_schema)},
        }
    )


def _headers() -> list[Any]:
    from litestar.enums import ParamType
    from litestar.openapi.spec import Parameter

    string = SchemaObject(type=OpenAPIType.STRING)
    return [
        Parameter(
            name="webhook-id",
            param_in=ParamType.HEADER,
            required=True,
            schema=string,
            description="The event's id (drop repeats: a retry carries the same id).",
        ),
        Parameter(
            name="webhook-timestamp",
            param_in=ParamType.HEADER,
            required=True,
            schema=string,
            description="Unix seconds when this attempt was signed; refuse anything older than 5 minutes.",
        ),
        Parameter(
            name="webhook-signature",
            param_in=ParamType.HEADER,
            required=True,
            schema=string,
            description="Space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>` (two for 24 h after a "
            "secret rotation).",
        ),
    ]


def _name(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.replace(".", "_").split("_")) + "Event"


def declare_webhooks(document: OpenAPI) -> None:
    components = document.components if isinstance(document.components, Components) else None
    if components is None:
        return
    schemas: dict[str, Any] = {**(components.schemas or {}), **PARTS}
    webhooks: dict[str, Any] = {}
    for event_type, (data_name, data_schema) in PAYLOADS.items():
        schemas[data_name] = data_schema
        envelope = _name(event_type)
        schemas[envelope] = _envelope(event_type, data_name)
        webhooks[event_type] = PathItem(
            post=Operation(
                operation_id=f"webhook_{event_type.replace('.', '_')}",
                summary=_DESCRIPTIONS.get(event_type, event_type),
                tags=["webhooks"],
                parameters=_headers(),
                request_body=RequestBody(
                    required=True,
                    content={"application/json": OpenAPIMediaType(schema={"$ref": _REF.format(envelope)})},  # type: ignore[arg-type]
                ),
                responses={
                    "2XX": OpenAPIResponse(description="Received (answer within 15 s; do the work afterwards)."),
                    "default": OpenAPIResponse(
                        description="Anything else is a failure: 5xx, 408, 429 and timeouts are retried with "
                        "backoff for more than a day; an endpoint failing for 5 days is disabled."
                    ),
                },
                security=[],
            )
        )
    components.schemas = schemas
    document.webhooks = webhooks
