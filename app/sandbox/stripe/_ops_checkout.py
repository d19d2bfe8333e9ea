"""Checkout sessions (subscription mode) and the customer portal (configurations and sessions).

A Checkout session is created open with a `url`; the stand-in's hosted page at that URL, or the control
API, completes it the way a customer paying would: a customer is created unless one was given, a card is
attached, the subscription starts (trialing, or charged at once), then `checkout.session.completed`.
"""

from __future__ import annotations

from typing import Any

from app.sandbox.stripe import _billing as billing
from app.sandbox.stripe import _forms as f
from app.sandbox.stripe import _model as m
from app.sandbox.stripe import _render as render
from app.sandbox.stripe._account import DAY, Account
from app.sandbox.stripe._api import Api, Call, list_filters, paginate
from app.sandbox.stripe._errors import StripeApiError, card_declined, invalid, no_such, unsupported
from app.sandbox.stripe._http import Route
from app.sandbox.stripe._ops_catalog import merge_metadata
from app.sandbox.stripe._ops_customers import TEST_CARDS, attach_payment_method
from app.sandbox.stripe._render_sessions import (
    DEFAULT_PORTAL_FEATURES,
    checkout_session,
    portal_configuration,
    portal_session,
)

SESSION_LIFETIME = DAY
TRIAL_SETTINGS = f.Obj(
    {
        "end_behavior": f.Obj(
            {"missing_payment_method": f.Enum("cancel", "create_invoice", "pause")},
            required=("missing_payment_method",),
        )
    },
    required=("end_behavior",),
)


def create_session(c: Call) -> dict[str, Any]:
    values = c.read(
        {
            "mode": f.Enum("payment", "setup", "subscription"),
            "line_items": f.Arr(
                f.Obj({"price": f.Str(), "quantity": f.Int(minimum=1)}, required=("price",)), max_items=20
            ),
            "customer": f.Str(),
            "customer_email": f.Str(max_length=512),
            "client_reference_id": f.Str(max_length=200),
            "metadata": f.Metadata(),
            "success_url": f.Str(max_length=5000),
            "cancel_url": f.Str(max_length=5000),
            "subscription_data": f.Obj(
                {
                    "trial_period_days": f.Int(minimum=1, maximum=730),
                    "trial_end": f.Int(minimum=0),
                    "metadata": f.Metadata(),
                    "description": f.Str(),
                    "trial_settings": TRIAL_SETTINGS,
                }
            ),
            "payment_method_collection": f.Enum("always", "if_required"),
            "allow_promotion_codes": f.Bool(),
            "locale": f.Str(),
            "expires_at": f.Int(minimum=0),
            "ui_mode": f.Enum("hosted"),
            "payment_method_types": f.Arr(f.Enum("card")),
            "billing_address_collection": f.Enum("auto", "required"),
        },
        required=("mode",),
    )
    acct = c.acct
    if values["mode"] != "subscription":
        raise unsupported(f"Checkout in `{values['mode']}` mode (subscription mode only)", "mode")
    if "customer" in values and "customer_email" in values:
        raise invalid("You may only specify one of these parameters: customer, customer_email.", "customer")
    customer = acct.customer(values["customer"]) if "customer" in values else None
    items = values.get("line_items") or []
    line_items = [m.LineItem(li["price"], li.get("quantity")) for li in items]
    prices = billing.check_prices(acct, line_items, "line_items")
    for i, (li, price) in enumerate(zip(line_items, prices, strict=True)):
        if price.usage_type == "metered" and li.quantity is not None:
            raise invalid(
                "Quantity should not be specified where usage_type is `metered`.", f"line_items[{i}][quantity]"
            )
        if price.usage_type == "licensed" and li.quantity is None:
            raise invalid(
                "Quantity is required. Add `quantity` to `line_items[0]`",
                f"line_items[{i}][quantity]",
                "parameter_missing",
            )
    expires_at = values.get("expires_at", acct.now + SESSION_LIFETIME)
    if not acct.now + 1800 <= expires_at <= acct.now + SESSION_LIFETIME:
        raise invalid("The `expires_at` timestamp must be between 30 minutes and 24 hours from now.", "expires_at")
    session_id = acct.ids.new("cs_test_", 58)
    data = values.get("subscription_data") or {}
    session = m.CheckoutSession(
        id=session_id,
        created=acct.now,
        expires_at=expires_at,
        mode="subscription",
        line_items=line_items,
        currency=prices[0].currency,
        amount_subtotal=sum(p.amount_for(li.quantity or 0) for p, li in zip(prices, line_items, strict=True)),
        success_url=values.get("success_url"),
        cancel_url=values.get("cancel_url"),
        url=f"{acct.public_base}/checkout/{session_id}",
        customer=customer.id if customer else None,
        customer_email=values.get("customer_email"),
        client_reference_id=values.get("client_reference_id"),
        metadata=merge_metadata({}, values.get("metadata")),
        subscription_data={**data, "metadata": merge_metadata({}, data.get("metadata"))},
        payment_method_collection=values.get("payment_method_collection", "always"),
        allow_promotion_codes=values.get("allow_promotion_codes"),
        locale=values.get("locale"),
    )
    acct.sessions[session.id] = session
    return checkout_session(acct, session)


def complete_session(
    acct: Account, session: m.CheckoutSession, *, card: str | None = "pm_card_visa"
) -> m.CheckoutSession:
    """The customer pays (``card`` a test token, or None to skip the card where it is optional)."""
    if session.status != "open":
        raise invalid(f"This Checkout Session is {session.status} and can no longer be completed.", "session")
    data = session.subscription_data
    trial = data.get("trial_period_days") is not None or data.get("trial_end") is not None
    if card is None and not (trial and session.payment_method_collection == "if_required"):
        raise invalid("A payment method is required for this Checkout Session.", "payment_method")
    if card is not None and card not in TEST_CARDS:
        raise invalid(f"Unknown test card {card!r}; use one of {', '.join(TEST_CARDS)}.", "payment_method")
    if not trial:  # the card is charged before anything is created; a decline leaves the session open
        decline = acct.take_decline(session.customer or "") or (TEST_CARDS[card][1] if card else None)
        if decline is not None:
            raise card_declined(decline)
    if session.customer is None:
        customer = m.Customer(
            id=acct.ids.new("cus_", 14),
            created=acct.now,
            email=session.customer_email or "customer@example.com",
            invoice_prefix=acct.ids.token(8).upper(),
        )
        acct.customers[customer.id] = customer
        session.customer = customer.id
        session.customer_created = True
        acct.emit("customer.created", render.customer(acct, customer))
    else:
        customer = acct.customer(session.customer)
    pm = attach_payment_method(acct, customer, card, "payment_method") if card else None
    if pm is not None:
        acct.emit("payment_method.attached", render.payment_method(pm))
    trial_end = data.get("trial_end")
    if trial_end is None and data.get("trial_period_days"):
        trial_end = acct.now + data["trial_period_days"] * DAY
    behavior = ((data.get("trial_settings") or {}).get("end_behavior") or {}).get(
        "missing_payment_method", "create_invoice"
    )
    spec = billing.NewSubscription(
        customer=customer,
        items=list(session.line_items),
        metadata=dict(data.get("metadata") or {}),
        trial_end=trial_end,
        trial_end_behavior=behavior,
        default_payment_method=pm.id if pm else None,
        description=data.get("description"),
    )
    sub, inv = billing.create_subscription(acct, spec, None)
    session.status = "complete"
    session.payment_status = "no_payment_required" if inv.amount_due == 0 else "paid"
    session.subscription = sub.id
    session.invoice = inv.id
    session.customer_details_email = customer.email
    acct.emit("checkout.session.completed", checkout_session(acct, session))
    return session


def session_of(acct: Account, session_id: str) -> m.CheckoutSession:
    found = acct.sessions.get(session_id)
    if found is None:
        raise no_such("checkout.session", session_id)
    return found


def retrieve_session(c: Call) -> dict[str, Any]:
    c.read({})
    return checkout_session(c.acct, session_of(c.acct, c.arg("id")))


def expire_session(c: Call) -> dict[str, Any]:
    c.read({})
    session = session_of(c.acct, c.arg("id"))
    if session.status != "open":
        raise invalid(
            f"Only Checkout Sessions with a status of `open` can be expired; this one is `{session.status}`.", "session"
        )
    session.status = "expired"
    out = checkout_session(c.acct, session)
    c.acct.emit("checkout.session.expired", out)
    return out


def list_sessions(c: Call) -> dict[str, Any]:
    filters = list_filters(
        c, {"customer": f.Str(), "subscription": f.Str(), "status": f.Enum("open", "complete", "expired")}
    )
    found = [
        s
        for s in c.acct.sessions.values()
        if all(getattr(s, k) == v for k, v in filters.items() if k in ("customer", "subscription", "status"))
    ]
    return paginate(c, found, "/v1/checkout/sessions", lambda s: checkout_session(c.acct, s), lambda s: s.id)


# ---- customer portal --------------------------------------------------------------------------------------

PORTAL_FIELDS: dict[str, f.Spec] = {
    "business_profile": f.Obj(
        {"headline": f.Str(nullable=True), "privacy_policy_url": f.Str(), "terms_of_service_url": f.Str()}
    ),
    "features": f.Loose(),
    "default_return_url": f.Str(nullable=True),
    "metadata": f.Metadata(),
    "name": f.Str(nullable=True),
}


def default_configuration(acct: Account) -> m.PortalConfiguration:
    found = next((cfg for cfg in acct.portal_configs.values() if cfg.is_default), None)
    if found is None:
        found = m.PortalConfiguration(
            id=acct.ids.new("bpc_"),
            created=acct.now,
            updated=acct.now,
            is_default=True,
            features=DEFAULT_PORTAL_FEATURES,
            business_profile={"headline": None, "privacy_policy_url": None, "terms_of_service_url": None},
        )
        acct.portal_configs[found.id] = found
    return found


def _configuration(acct: Account, config_id: str, param: str = "configuration") -> m.PortalConfiguration:
    found = acct.portal_configs.get(config_id)
    if found is None:
        raise no_such("billing portal configuration", config_id, param)
    return found


def _apply_configuration(cfg: m.PortalConfiguration, values: dict[str, Any]) -> None:
    if "business_profile" in values:
        cfg.business_profile = {**cfg.business_profile, **values["business_profile"]}
    if "features" in values:
        cfg.features = _merge(cfg.features, values["features"])
    for name in ("default_return_url", "name"):
        if name in values:
            setattr(cfg, name, values[name])
    cfg.metadata = merge_metadata(cfg.metadata, values.get("metadata"))


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def create_configuration(c: Call) -> dict[str, Any]:
    values = c.read(PORTAL_FIELDS, required=("features",))
    acct = c.acct
    default_configuration(acct)
    cfg = m.PortalConfiguration(
        id=acct.ids.new("bpc_"),
        created=acct.now,
        updated=acct.now,
        is_default=False,
        features=DEFAULT_PORTAL_FEATURES,
        business_profile={"headline": None, "privacy_policy_url": None, "terms_of_service_url": None},
    )
    _apply_configuration(cfg, values)
    acct.portal_configs[cfg.id] = cfg
    out = portal_configuration(cfg)
    acct.emit("billing_portal.configuration.created", out)
    return out


def retrieve_configuration(c: Call) -> dict[str, Any]:
    c.read({})
    return portal_configuration(_configuration(c.acct, c.arg("id"), "id"))


def update_configuration(c: Call) -> dict[str, Any]:
    values = c.read({**PORTAL_FIELDS, "active": f.Bool()})
    cfg = _configuration(c.acct, c.arg("id"), "id")
    _apply_configuration(cfg, values)
    if "active" in values:
        cfg.active = values["active"]
    cfg.updated = c.acct.now
    out = portal_configuration(cfg)
    c.acct.emit("billing_portal.configuration.updated", out)
    return out


def list_configurations(c: Call) -> dict[str, Any]:
    filters = list_filters(c, {"active": f.Bool(), "is_default": f.Bool()})
    default_configuration(c.acct)
    found = [
        cfg
        for cfg in c.acct.portal_configs.values()
        if all(getattr(cfg, k) == v for k, v in filters.items() if k in ("active", "is_default"))
    ]
    return paginate(c, found, "/v1/billing_portal/configurations", portal_configuration, lambda cfg: cfg.id)


def _flow(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """The session's `flow` object from the `flow_data` it was created with."""
    if not data:
        return None
    after = data.get("after_completion") or {}
    cancel = data.get("subscription_cancel")
    update = data.get("subscription_update")
    confirm = data.get("subscription_update_confirm")
    return {
        "after_completion": {
            "hosted_confirmation": after.get("hosted_confirmation"),
            "redirect": after.get("redirect"),
            "type": after.get("type", "portal_homepage"),
        },
        "subscription_cancel": {"retention": cancel.get("retention"), "subscription": cancel.get("subscription")}
        if cancel
        else None,
        "subscription_update": {"subscription": update.get("subscription")} if update else None,
        "subscription_update_confirm": {
            "discounts": confirm.get("discounts"),
            "items": confirm.get("items") or [],
            "subscription": confirm.get("subscription"),
        }
        if confirm
        else None,
        "type": data.get("type"),
    }


def create_portal_session(c: Call) -> dict[str, Any]:
    values = c.read(
        {
            "customer": f.Str(),
            "return_url": f.Str(),
            "configuration": f.Str(),
            "locale": f.Str(),
            "flow_data": f.Loose(),
        },
        required=("customer",),
    )
    acct = c.acct
    customer = acct.customer(values["customer"])
    cfg = _configuration(acct, values["configuration"]) if "configuration" in values else default_configuration(acct)
    if not cfg.active:
        raise invalid("The portal configuration is inactive.", "configuration")
    return_url = values.get("return_url") or cfg.default_return_url
    if return_url is None:
        raise StripeApiError(
            400, "A `return_url` is required when the configuration has no `default_return_url`.", param="return_url"
        )
    session_id = acct.ids.new("bps_")
    session = m.PortalSession(
        id=session_id,
        created=acct.now,
        customer=customer.id,
        configuration=cfg.id,
        return_url=return_url,
        url=f"{acct.public_base}/portal/{session_id}",
        locale=values.get("locale"),
        flow=_flow(values.get("flow_data")),
    )
    acct.portal_sessions[session.id] = session
    out = portal_session(session)
    acct.emit("billing_portal.session.created", out)
    return out


def routes(api: Api) -> list[Route]:
    r = api.route
    return [
        r("POST", "/v1/checkout/sessions", create_session),
        r("GET", "/v1/checkout/sessions", list_sessions),
        r("GET", "/v1/checkout/sessions/{id}", retrieve_session),
        r("POST", "/v1/checkout/sessions/{id}/expire", expire_session),
        r("POST", "/v1/billing_portal/configurations", create_configuration),
        r("GET", "/v1/billing_portal/configurations", list_configurations),
        r("GET", "/v1/billing_portal/configurations/{id}", retrieve_configuration),
        r("POST", "/v1/billing_portal/configurations/{id}", update_configuration),
        r("POST", "/v1/billing_portal/sessions", create_portal_session),
    ]
