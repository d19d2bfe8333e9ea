"""Stripe's JSON for each object: the same field names, nesting and `object` values as the real API.

Fields the stand-in does not model carry the value Stripe gives an account that does not use the feature
(usually null, `[]` or `false`), so a client reading them sees what it would see in test mode.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.sandbox.stripe import _model as m
from app.sandbox.stripe._account import API_VERSION, Account


def number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def decimal_string(value: Decimal | int | None) -> str | None:
    if value is None:
        return None
    text = format(Decimal(value), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def list_object(data: list[dict[str, Any]], url: str, *, has_more: bool = False) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def customer(acct: Account, c: m.Customer) -> dict[str, Any]:
    if c.deleted:
        return {"id": c.id, "object": "customer", "deleted": True}
    delinquent = any(
        i.customer == c.id and i.status == "open" and i.attempted for i in acct.invoices.values()
    )  # fmt: skip
    return {
        "id": c.id,
        "object": "customer",
        "address": None,
        "balance": c.balance,
        "created": c.created,
        "currency": c.currency,
        "default_source": None,
        "delinquent": delinquent,
        "description": c.description,
        "discount": None,
        "email": c.email,
        "invoice_prefix": c.invoice_prefix,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": c.default_payment_method,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": dict(c.metadata),
        "name": c.name,
        "next_invoice_sequence": c.next_invoice_sequence,
        "phone": c.phone,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def payment_method(pm: m.PaymentMethod) -> dict[str, Any]:
    return {
        "id": pm.id,
        "object": "payment_method",
        "allow_redisplay": "always",
        "billing_details": {"address": None, "email": None, "name": None, "phone": None, "tax_id": None},
        "card": {
            "brand": "visa",
            "country": "US",
            "exp_month": 12,
            "exp_year": pm.exp_year,
            "funding": "credit",
            "last4": pm.last4,
        },
        "created": pm.created,
        "customer": pm.customer,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def product(p: m.Product) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "product",
        "active": p.active,
        "created": p.created,
        "default_price": p.default_price,
        "description": p.description,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": dict(p.metadata),
        "name": p.name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": p.statement_descriptor,
        "tax_code": p.tax_code,
        "type": "service",
        "unit_label": p.unit_label,
        "updated": p.updated,
        "url": p.url,
    }


def unit_decimal(p: m.Price) -> str | None:
    return decimal_string(p.unit_amount_decimal if p.unit_amount_decimal is not None else p.unit_amount)


def price(p: m.Price) -> dict[str, Any]:
    recurring = None
    if p.interval is not None:
        recurring = {
            "interval": p.interval,
            "interval_count": p.interval_count,
            "meter": p.meter,
            "trial_period_days": p.trial_period_days,
            "usage_type": p.usage_type,
        }
    return {
        "id": p.id,
        "object": "price",
        "active": p.active,
        "billing_scheme": "per_unit",
        "created": p.created,
        "currency": p.currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": p.lookup_key,
        "metadata": dict(p.metadata),
        "nickname": p.nickname,
        "product": p.product,
        "recurring": recurring,
        "tax_behavior": p.tax_behavior,
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": p.unit_amount,
        "unit_amount_decimal": unit_decimal(p),
    }


def plan(p: m.Price) -> dict[str, Any]:
    """The legacy `plan` mirror of a recurring price that subscription items still carry."""
    return {
        "id": p.id,
        "object": "plan",
        "active": p.active,
        "amount": p.unit_amount,
        "amount_decimal": unit_decimal(p),
        "billing_scheme": "per_unit",
        "created": p.created,
        "currency": p.currency,
        "interval": p.interval,
        "interval_count": p.interval_count,
        "livemode": False,
        "metadata": dict(p.metadata),
        "meter": p.meter,
        "nickname": p.nickname,
        "product": p.product,
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": p.trial_period_days,
        "usage_type": p.usage_type,
    }


def meter(mt: m.Meter) -> dict[str, Any]:
    return {
        "id": mt.id,
        "object": "billing.meter",
        "created": mt.created,
        "customer_mapping": {"event_payload_key": mt.customer_key, "type": "by_id"},
        "default_aggregation": {"formula": mt.formula},
        "display_name": mt.display_name,
        "event_name": mt.event_name,
        "event_time_window": mt.event_time_window,
        "livemode": False,
        "status": mt.status,
        "status_transitions": {"deactivated_at": mt.deactivated_at},
        "updated": mt.updated,
        "value_settings": {"event_payload_key": mt.value_key},
    }


def meter_event(ev: m.MeterEvent) -> dict[str, Any]:
    return {
        "object": "billing.meter_event",
        "created": ev.created,
        "event_name": ev.event_name,
        "identifier": ev.identifier,
        "livemode": False,
        "payload": dict(ev.payload),
        "timestamp": ev.timestamp,
    }


def meter_event_summary(summary_id: str, meter_id: str, start: int, end: int, value: Decimal) -> dict[str, Any]:
    return {
        "id": summary_id,
        "object": "billing.meter_event_summary",
        "aggregated_value": number(value),
        "end_time": end,
        "livemode": False,
        "meter": meter_id,
        "start_time": start,
    }


def webhook_endpoint(e: m.WebhookEndpoint, *, with_secret: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": e.id,
        "object": "webhook_endpoint",
        "api_version": e.api_version,
        "application": None,
        "created": e.created,
        "description": e.description,
        "enabled_events": list(e.enabled_events),
        "livemode": False,
        "metadata": dict(e.metadata),
        "status": e.status,
        "url": e.url,
    }
    if with_secret:  # Stripe shows the signing secret only in the answer to the create call
        out["secret"] = e.secret
    return out


def event(ev: m.Event) -> dict[str, Any]:
    data: dict[str, Any] = {"object": ev.data_object}
    if ev.previous_attributes is not None:
        data["previous_attributes"] = ev.previous_attributes
    return {
        "id": ev.id,
        "object": "event",
        "api_version": ev.api_version or API_VERSION,
        "created": ev.created,
        "data": data,
        "livemode": False,
        "pending_webhooks": len(ev.pending_endpoints),
        "request": {"id": ev.request_id, "idempotency_key": ev.idempotency_key},
        "type": ev.type,
    }


def deleted(object_id: str, object_type: str) -> dict[str, Any]:
    return {"id": object_id, "object": object_type, "deleted": True}
