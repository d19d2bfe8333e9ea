"""Stripe's JSON for Checkout and portal sessions, portal configurations and subscription schedules."""

from __future__ import annotations

from typing import Any

from app.sandbox.stripe import _model as m
from app.sandbox.stripe._account import Account

DEFAULT_PORTAL_FEATURES: dict[str, Any] = {
    "customer_update": {"allowed_updates": ["email"], "enabled": True},
    "invoice_history": {"enabled": True},
    "payment_method_update": {"enabled": True, "payment_method_configuration": None},
    "subscription_cancel": {
        "cancellation_reason": {"enabled": False, "options": []},
        "enabled": True,
        "mode": "at_period_end",
        "proration_behavior": "none",
    },
    "subscription_update": {
        "billing_cycle_anchor": None,
        "default_allowed_updates": [],
        "enabled": False,
        "proration_behavior": "create_prorations",
        "schedule_at_period_end": {"conditions": [{"type": "decreasing_item_amount"}]},
        "trial_update_behavior": "end_trial",
    },
}


def checkout_session(acct: Account, s: m.CheckoutSession) -> dict[str, Any]:
    trial = bool(s.subscription_data.get("trial_period_days") or s.subscription_data.get("trial_end"))
    amount_total = 0 if trial else s.amount_subtotal
    complete = s.status == "complete"
    return {
        "id": s.id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": s.allow_promotion_codes,
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": s.cancel_url,
        "client_reference_id": s.client_reference_id,
        "client_secret": None,
        "collected_information": {"business_name": None, "individual_name": None, "shipping_details": None}
        if complete
        else None,
        "consent": None,
        "consent_collection": None,
        "created": s.created,
        "currency": s.currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": s.customer,
        "customer_account": None,
        "customer_creation": "always" if s.customer_created or (s.customer is None) else None,
        "customer_details": {
            "address": None,
            "business_name": None,
            "email": s.customer_details_email,
            "individual_name": None,
            "name": None,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }
        if complete
        else None,
        "customer_email": s.customer_email,
        "discounts": [],
        "expires_at": s.expires_at,
        "integration_identifier": None,
        "invoice": s.invoice,
        "invoice_creation": None,
        "livemode": False,
        "locale": s.locale,
        "managed_payments": {"enabled": False},
        "metadata": dict(s.metadata),
        "mode": s.mode,
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": s.payment_method_collection,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": s.payment_status,
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": {
            "allow_redisplay_filters": ["always"],
            "payment_method_remove": None,
            "payment_method_save": None,
        },
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": s.status,
        "submit_type": None,
        "subscription": s.subscription,
        "success_url": s.success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": s.url if s.status == "open" else None,
        "wallet_options": None,
    }


def portal_configuration(c: m.PortalConfiguration) -> dict[str, Any]:
    return {
        "id": c.id,
        "object": "billing_portal.configuration",
        "active": c.active,
        "application": None,
        "business_profile": dict(c.business_profile),
        "created": c.created,
        "default_return_url": c.default_return_url,
        "features": c.features,
        "is_default": c.is_default,
        "livemode": False,
        "login_page": {"enabled": False, "url": None},
        "metadata": dict(c.metadata),
        "name": c.name,
        "updated": c.updated,
    }


def portal_session(s: m.PortalSession) -> dict[str, Any]:
    return {
        "id": s.id,
        "object": "billing_portal.session",
        "configuration": s.configuration,
        "created": s.created,
        "customer": s.customer,
        "customer_account": None,
        "flow": s.flow,
        "livemode": False,
        "locale": s.locale,
        "on_behalf_of": None,
        "return_url": s.return_url,
        "url": s.url,
    }


def _phase(p: m.Phase, currency: str) -> dict[str, Any]:
    return {
        "add_invoice_items": [],
        "application_fee_percent": None,
        "automatic_tax": None,
        "billing_cycle_anchor": None,
        "billing_thresholds": None,
        "collection_method": None,
        "currency": currency,
        "default_payment_method": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "end_date": p.end_date,
        "invoice_settings": None,
        "items": [
            {
                "billing_thresholds": None,
                "discounts": [],
                "metadata": {},
                "plan": item.price,
                "price": item.price,
                "quantity": item.quantity,
                "tax_rates": [],
            }
            for item in p.items
        ],
        "metadata": dict(p.metadata),
        "on_behalf_of": None,
        "proration_behavior": p.proration_behavior,
        "start_date": p.start_date,
        "transfer_data": None,
        "trial_end": p.trial_end,
    }


def schedule(acct: Account, s: m.Schedule) -> dict[str, Any]:
    current = s.current_phase(acct.now)
    sub = acct.subscriptions.get(s.subscription) if s.subscription else None
    currency = sub.currency if sub else "usd"
    return {
        "id": s.id,
        "object": "subscription_schedule",
        "application": None,
        "billing_mode": {"flexible": None, "type": "classic", "updated_at": None},
        "canceled_at": s.canceled_at,
        "completed_at": s.completed_at,
        "created": s.created,
        "current_phase": {"end_date": current.end_date, "start_date": current.start_date} if current else None,
        "customer": s.customer,
        "customer_account": None,
        "default_settings": {
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": "automatic",
            "billing_thresholds": None,
            "collection_method": "charge_automatically",
            "default_payment_method": None,
            "description": None,
            "invoice_settings": {"account_tax_ids": None, "days_until_due": None, "issuer": {"type": "self"}},
            "on_behalf_of": None,
            "transfer_data": None,
        },
        "end_behavior": s.end_behavior,
        "livemode": False,
        "metadata": dict(s.metadata),
        "phases": [_phase(p, currency) for p in s.phases],
        "released_at": s.released_at,
        "released_subscription": s.released_subscription,
        "status": s.status,
        "subscription": s.subscription,
        "test_clock": None,
    }
