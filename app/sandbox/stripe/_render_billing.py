"""Stripe's JSON for subscriptions, their items, invoices and invoice lines."""

from __future__ import annotations

from typing import Any

from app.sandbox.stripe import _model as m
from app.sandbox.stripe._account import Account
from app.sandbox.stripe._render import list_object, plan, price, unit_decimal


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
        "pricing": {"type": "price_details", "unit_amount_decimal": unit_decimal(unit) if unit else None},
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
