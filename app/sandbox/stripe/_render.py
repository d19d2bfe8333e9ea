"""Stripe's JSON for each object: the same field names, nesting and `object` values as the real API.

Fields the stand-in does not model carry the value Stripe gives an account that does not use the feature
(usually null, `[]` or `false`), so a client reading them sees what it would see in test mode.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.sandbox.stripe import _model as m
from app.sandbox.stripe._account import API_VERSION, Account

ADDRESS_NONE = None


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
        "address": ADDRESS_NONE,
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


def _unit_decimal(p: m.Price) -> str | None:
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
        "unit_amount_decimal": _unit_decimal(p),
    }


def plan(p: m.Price) -> dict[str, Any]:
    """The legacy `plan` mirror of a recurring price that subscription items still carry."""
    return {
        "id": p.id,
        "object": "plan",
        "active": p.active,
        "amount": p.unit_amount,
        "amount_decimal": _unit_decimal(p),
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


def subscription_item(acct: Account, sub: m.Subscription, item: m.SubItem) -> dict[str, Any]:
    p = acct.prices[item.price]
    return {
        "id": item.id,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": item.created,
        "current_period_end": sub.period_end,
        "current_period_start": sub.period_start,
        "discounts": [],
        "metadata": dict(item.metadata),
        "plan": plan(p),
        "price": price(p),
        "quantity": item.quantity,
        "subscription": sub.id,
        "tax_rates": [],
    }


def subscription(acct: Account, sub: m.Subscription) -> dict[str, Any]:
    items = [subscription_item(acct, sub, i) for i in sub.items]
    return {
        "id": sub.id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": sub.billing_cycle_anchor,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": sub.cancel_at,
        "cancel_at_period_end": sub.cancel_at_period_end,
        "canceled_at": sub.canceled_at,
        "cancellation_details": {
            "comment": sub.cancellation_comment,
            "feedback": sub.cancellation_feedback,
            "reason": sub.cancellation_reason,
        },
        "collection_method": sub.collection_method,
        "created": sub.created,
        "currency": sub.currency,
        "customer": sub.customer,
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": sub.default_payment_method,
        "default_source": None,
        "default_tax_rates": [],
        "description": sub.description,
        "discounts": [],
        "ended_at": sub.ended_at,
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "items": list_object(items, f"/v1/subscription_items?subscription={sub.id}"),
        "latest_invoice": sub.latest_invoice,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": dict(sub.metadata),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": sub.schedule,
        "start_date": sub.start_date,
        "status": sub.status,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": sub.trial_end,
        "trial_settings": {"end_behavior": {"missing_payment_method": sub.trial_end_behavior}},
        "trial_start": sub.trial_start,
    }


def invoice_line(inv: m.Invoice, line: m.InvoiceLine, acct: Account) -> dict[str, Any]:
    unit = acct.prices[line.price] if line.price else None
    if line.invoice_item is not None:
        parent: dict[str, Any] = {
            "invoice_item_details": {
                "invoice_item": line.invoice_item,
                "proration": line.proration,
                "proration_details": {"credited_items": None},
                "subscription": line.subscription,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        }
    else:
        parent = {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": line.proration,
                "proration_details": {"credited_items": None},
                "subscription": line.subscription,
                "subscription_item": line.subscription_item,
            },
            "type": "subscription_item_details",
        }
    return {
        "id": line.id,
        "object": "line_item",
        "amount": line.amount,
        "currency": inv.currency,
        "description": line.description,
        "discount_amounts": [],
        "discountable": not line.proration,
        "discounts": [],
        "invoice": inv.id,
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": {"end": line.period_end, "start": line.period_start},
        "pretax_credit_amounts": [],
        "pricing": {"type": "price_details", "unit_amount_decimal": _unit_decimal(unit) if unit else None},
        "quantity": line.quantity,
        "quantity_decimal": None if line.quantity is None else str(line.quantity),
        "subscription": line.subscription,
        "subtotal": line.amount,
        "taxes": [],
    }


def invoice(acct: Account, inv: m.Invoice) -> dict[str, Any]:
    cust = acct.customers.get(inv.customer)
    base = acct.public_base or ""
    finalized = inv.finalized_at is not None
    total = inv.subtotal
    sub = acct.subscriptions.get(inv.subscription) if inv.subscription else None
    return {
        "id": inv.id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Stock Tracker (Stripe stand-in)",
        "account_tax_ids": None,
        "amount_due": inv.amount_due,
        "amount_overpaid": 0,
        "amount_paid": inv.amount_paid,
        "amount_remaining": inv.amount_due - inv.amount_paid if inv.status != "void" else 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": inv.attempt_count,
        "attempted": inv.attempted,
        "auto_advance": inv.status in ("draft", "open"),
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": inv.billing_reason,
        "collection_method": "charge_automatically",
        "created": inv.created,
        "currency": inv.currency,
        "custom_fields": None,
        "customer": inv.customer,
        "customer_account": None,
        "customer_address": None,
        "customer_email": cust.email if cust else None,
        "customer_name": cust.name if cust else None,
        "customer_phone": None,
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": inv.finalized_at,
        "ending_balance": inv.ending_balance,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": f"{base}/invoices/{inv.id}" if finalized else None,
        "invoice_pdf": f"{base}/invoices/{inv.id}/pdf" if finalized else None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": list_object([invoice_line(inv, line, acct) for line in inv.lines], f"/v1/invoices/{inv.id}/lines"),
        "livemode": False,
        "metadata": dict(inv.metadata),
        "next_payment_attempt": inv.next_payment_attempt,
        "number": inv.number,
        "on_behalf_of": None,
        "parent": None
        if sub is None
        else {
            "quote_details": None,
            "subscription_details": {"metadata": dict(sub.metadata), "subscription": sub.id},
            "type": "subscription_details",
        },
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "period_end": inv.period_end,
        "period_start": inv.period_start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": inv.starting_balance,
        "statement_descriptor": None,
        "status": inv.status,
        "status_transitions": {
            "finalized_at": inv.finalized_at,
            "marked_uncollectible_at": inv.marked_uncollectible_at,
            "paid_at": inv.paid_at,
            "voided_at": inv.voided_at,
        },
        # Kept null as in Stripe's example: the invoice's subscription is `parent.subscription_details`.
        "subscription": None,
        "subtotal": inv.subtotal,
        "subtotal_excluding_tax": inv.subtotal,
        "test_clock": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": inv.created,
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
