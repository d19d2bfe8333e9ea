"""Webhook endpoints (the signing secret is shown once, on create) and the events API."""

from __future__ import annotations

import re
import secrets
from typing import Any

from app.sandbox.stripe import _forms as f
from app.sandbox.stripe import _model as m
from app.sandbox.stripe import _render as render
from app.sandbox.stripe._account import Account
from app.sandbox.stripe._api import Api, Call, list_filters, paginate
from app.sandbox.stripe._errors import invalid, no_such
from app.sandbox.stripe._http import Route
from app.sandbox.stripe._ops_catalog import merge_metadata

ENDPOINT_FIELDS: dict[str, f.Spec] = {
    "url": f.Str(),
    "enabled_events": f.Arr(f.Str(), max_items=500),
    "description": f.Str(nullable=True),
    "metadata": f.Metadata(),
}


def create_webhook_endpoint(c: Call) -> dict[str, Any]:
    values = c.read(
        {**ENDPOINT_FIELDS, "api_version": f.Str(), "connect": f.Bool()}, required=("url", "enabled_events")
    )
    acct = c.acct
    if not re.match(r"^https?://", values["url"]):
        raise invalid("Invalid URL: URL must be publicly accessible and use http or https.", "url", "url_invalid")
    endpoint = m.WebhookEndpoint(
        id=acct.ids.new("we_"),
        created=acct.now,
        url=values["url"],
        secret="whsec_" + secrets.token_urlsafe(24),
        enabled_events=values["enabled_events"],
        description=values.get("description"),
        metadata=merge_metadata({}, values.get("metadata")),
        api_version=values.get("api_version"),
    )
    acct.webhook_endpoints[endpoint.id] = endpoint
    return render.webhook_endpoint(endpoint, with_secret=True)


def _endpoint(acct: Account, endpoint_id: str) -> m.WebhookEndpoint:
    found = acct.webhook_endpoints.get(endpoint_id)
    if found is None:
        raise no_such("webhook endpoint", endpoint_id)
    return found


def retrieve_webhook_endpoint(c: Call) -> dict[str, Any]:
    c.read({})
    return render.webhook_endpoint(_endpoint(c.acct, c.arg("id")))


def update_webhook_endpoint(c: Call) -> dict[str, Any]:
    values = c.read({**ENDPOINT_FIELDS, "disabled": f.Bool()})
    endpoint = _endpoint(c.acct, c.arg("id"))
    for name in ("url", "enabled_events", "description"):
        if name in values:
            setattr(endpoint, name, values[name])
    if "disabled" in values:
        endpoint.status = "disabled" if values["disabled"] else "enabled"
    endpoint.metadata = merge_metadata(endpoint.metadata, values.get("metadata"))
    return render.webhook_endpoint(endpoint)


def delete_webhook_endpoint(c: Call) -> dict[str, Any]:
    c.read({})
    endpoint = _endpoint(c.acct, c.arg("id"))
    del c.acct.webhook_endpoints[endpoint.id]
    return render.deleted(endpoint.id, "webhook_endpoint")


def list_webhook_endpoints(c: Call) -> dict[str, Any]:
    list_filters(c, {})
    return paginate(
        c, list(c.acct.webhook_endpoints.values()), "/v1/webhook_endpoints", render.webhook_endpoint, lambda e: e.id
    )


def retrieve_event(c: Call) -> dict[str, Any]:
    c.read({})
    return render.event(c.acct.event(c.arg("id")))


def list_events(c: Call) -> dict[str, Any]:
    filters = list_filters(
        c, {"type": f.Str(), "types": f.Arr(f.Str(), max_items=20), "created": f.RANGE, "delivery_success": f.Bool()}
    )
    created = filters.get("created") or {}

    def wanted(e: m.Event) -> bool:
        kind = filters.get("type")
        if kind is not None and not (e.type == kind or (kind.endswith(".*") and e.type.startswith(kind[:-1]))):
            return False
        if "types" in filters and e.type not in filters["types"]:
            return False
        if "delivery_success" in filters and (not e.pending_endpoints) != filters["delivery_success"]:
            return False
        bounds = {"gt": e.created > created.get("gt", -1), "gte": e.created >= created.get("gte", -1)}
        return (
            bounds["gt"]
            and bounds["gte"]
            and e.created < created.get("lt", 1 << 62)
            and e.created <= created.get("lte", 1 << 62)
        )

    found = [e for e in c.acct.events.values() if wanted(e)]
    return paginate(c, found, "/v1/events", render.event, lambda e: e.id)


def routes(api: Api) -> list[Route]:
    r = api.route
    return [
        r("POST", "/v1/webhook_endpoints", create_webhook_endpoint),
        r("GET", "/v1/webhook_endpoints", list_webhook_endpoints),
        r("GET", "/v1/webhook_endpoints/{id}", retrieve_webhook_endpoint),
        r("POST", "/v1/webhook_endpoints/{id}", update_webhook_endpoint),
        r("DELETE", "/v1/webhook_endpoints/{id}", delete_webhook_endpoint),
        r("GET", "/v1/events", list_events),
        r("GET", "/v1/events/{id}", retrieve_event),
    ]
