"""Subscriptions and subscription items."""

from __future__ import annotations

from typing import Any

from app.sandbox.stripe import _billing as billing
from app.sandbox.stripe import _forms as f
from app.sandbox.stripe import _invoicing as invoicing
from app.sandbox.stripe import _model as m
from app.sandbox.stripe import _render_billing as render_billing
from app.sandbox.stripe._account import Account
from app.sandbox.stripe._api import Api, Call, list_filters, paginate
from app.sandbox.stripe._errors import invalid, no_such, unsupported
from app.sandbox.stripe._http import Route
from app.sandbox.stripe._ops_catalog import merge_metadata
from app.sandbox.stripe._ops_checkout import TRIAL_SETTINGS
from app.sandbox.stripe._ops_customers import attach_payment_method

PRORATION = f.Enum("always_invoice", "create_prorations", "none")
PAYMENT_BEHAVIOR = f.Enum("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete")
ITEM = f.Obj(
    {
        "id": f.Str(),
        "price": f.Str(),
        "quantity": f.Int(minimum=0),
        "deleted": f.Bool(),
        "metadata": f.Metadata(),
        "clear_usage": f.Bool(),
    }
)
CANCELLATION = f.Obj(
    {
        "comment": f.Str(nullable=True, max_length=5000),
        "feedback": f.Enum(
            "customer_service", "low_quality", "missing_features", "other", "switched_service",
            "too_complex", "too_expensive", "unused", nullable=True,
        ),
    }
)  # fmt: skip
STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)
MANAGED_BY_SCHEDULE = (
    "The subscription is managed by the subscription schedule `{}`, and updating any cancelation behavior directly "
    "is not allowed. Please update the schedule instead."
)


def _payment_method(acct: Account, customer: m.Customer, pm_id: str | None, param: str) -> str | None:
    if pm_id is None:
        return None
    return attach_payment_method(acct, customer, pm_id, param).id


def create_subscription(c: Call) -> dict[str, Any]:
    values = c.read(
        {
            "customer": f.Str(),
            "items": f.Arr(ITEM, max_items=20),
            "metadata": f.Metadata(),
            "trial_period_days": f.Int(minimum=0, maximum=730),
            "trial_end": f.Ts(allow_now=True),
            "trial_settings": TRIAL_SETTINGS,
            "default_payment_method": f.Str(),
            "description": f.Str(max_length=500),
            "payment_behavior": PAYMENT_BEHAVIOR,
            "collection_method": f.Enum("charge_automatically"),
            "cancel_at_period_end": f.Bool(),
            "proration_behavior": PRORATION,
            "off_session": f.Bool(),
        },
        required=("customer", "items"),
    )
    acct = c.acct
    customer = acct.customer(values["customer"])
    behavior = values.get("payment_behavior", "allow_incomplete")
    if behavior == "pending_if_incomplete":
        raise invalid("`pending_if_incomplete` is only supported when updating a subscription.", "payment_behavior")
    items = [m.LineItem(i.get("price") or "", i.get("quantity")) for i in values["items"]]
    trial_end = values.get("trial_end")
    if trial_end == "now":
        trial_end = None
    elif values.get("trial_period_days"):
        trial_end = acct.now + values["trial_period_days"] * 86_400
    if isinstance(trial_end, int) and trial_end <= acct.now:
        raise invalid("Invalid timestamp: must be an integer Unix timestamp in the future.", "trial_end")
    spec = billing.NewSubscription(
        customer=customer,
        items=items,
        metadata=merge_metadata({}, values.get("metadata")),
        trial_end=trial_end,
        trial_end_behavior=((values.get("trial_settings") or {}).get("end_behavior") or {}).get(
            "missing_payment_method", "create_invoice"
        ),
        default_payment_method=_payment_method(
            acct, customer, values.get("default_payment_method"), "default_payment_method"
        ),
        description=values.get("description"),
    )
    billing.check_prices(acct, items)
    charged = trial_end is None
    if charged and behavior == "error_if_incomplete":
        billing.require_payment_for(acct, spec)
        decline = None
    else:
        decline = billing.decide_for(acct, spec) if charged else None
    sub, _ = billing.create_subscription(acct, spec, decline, attempt=behavior != "default_incomplete")
    if values.get("cancel_at_period_end"):
        before = invoicing.snapshot(acct, sub)
        _cancel_at_period_end(acct, sub, True)
        invoicing.emit_updated(acct, sub, before)
    return render_billing.subscription(acct, sub)


def retrieve_subscription(c: Call) -> dict[str, Any]:
    c.read({})
    return render_billing.subscription(c.acct, c.acct.subscription(c.arg("id")))


def list_subscriptions(c: Call) -> dict[str, Any]:
    filters = list_filters(c, {"customer": f.Str(), "price": f.Str(), "status": f.Enum(*STATUSES), "created": f.RANGE})
    status = filters.get("status")

    def wanted(sub: m.Subscription) -> bool:
        if "customer" in filters and sub.customer != filters["customer"]:
            return False
        if "price" in filters and all(i.price != filters["price"] for i in sub.items):
            return False
        if status is None:
            return sub.status != "canceled"
        if status == "ended":
            return sub.status in ("canceled", "incomplete_expired")
        return status == "all" or sub.status == status

    found = [s for s in c.acct.subscriptions.values() if wanted(s)]
    return paginate(c, found, "/v1/subscriptions", lambda s: render_billing.subscription(c.acct, s), lambda s: s.id)


def _cancel_at_period_end(acct: Account, sub: m.Subscription, flag: bool) -> None:
    sub.cancel_at_period_end = flag
    if flag:
        sub.cancel_at = sub.trial_end if sub.status == "trialing" and sub.trial_end else sub.period_end
        sub.canceled_at = acct.now
        sub.cancellation_reason = "cancellation_requested"
    else:
        sub.cancel_at = None
        sub.canceled_at = None
        sub.cancellation_reason = None


def _changes(raw: list[dict[str, Any]]) -> list[billing.ItemChange]:
    return [
        billing.ItemChange(i.get("id"), i.get("price"), i.get("quantity"), bool(i.get("deleted")), i.get("metadata"))
        for i in raw
    ]


def apply_update(acct: Account, sub: m.Subscription, values: dict[str, Any]) -> m.Subscription:
    """Everything `POST /v1/subscriptions/{id}` (and the item endpoints) can change, in Stripe's order."""
    if sub.status in ("canceled", "incomplete_expired") and set(values) - {"metadata", "cancellation_details"}:
        raise invalid("A canceled subscription can only update its cancellation_details and metadata.", None)
    if sub.schedule is not None and ({"cancel_at_period_end", "cancel_at"} & set(values)):
        raise invalid(MANAGED_BY_SCHEDULE.format(sub.schedule), "cancel_at_period_end")
    behavior = values.get("payment_behavior", "allow_incomplete")
    if behavior == "pending_if_incomplete":
        raise unsupported("`payment_behavior=pending_if_incomplete`", "payment_behavior")
    if values.get("billing_cycle_anchor", "unchanged") != "unchanged":
        raise unsupported("resetting the billing cycle anchor", "billing_cycle_anchor")
    proration = values.get("proration_behavior", "create_prorations")
    proration_date = values.get("proration_date", acct.now)
    if not sub.period_start <= proration_date <= sub.period_end:
        raise invalid("`proration_date` must be within the current billing period.", "proration_date")
    customer = acct.customers[sub.customer]
    if proration == "always_invoice" and "items" in values and behavior == "error_if_incomplete":
        billing.require_payment(acct, sub)  # a decline refuses the whole update (402), nothing changes
    before = invoicing.snapshot(acct, sub)
    sub.metadata = merge_metadata(sub.metadata, values.get("metadata"))
    if "description" in values:
        sub.description = values["description"]
    if "default_payment_method" in values:
        sub.default_payment_method = _payment_method(
            acct, customer, values["default_payment_method"], "default_payment_method"
        )
    details = values.get("cancellation_details") or {}
    sub.cancellation_comment = details.get("comment", sub.cancellation_comment)
    sub.cancellation_feedback = details.get("feedback", sub.cancellation_feedback)
    if "trial_settings" in values:
        sub.trial_end_behavior = values["trial_settings"]["end_behavior"]["missing_payment_method"]
    prorations: list[m.InvoiceItem] = []
    if "items" in values:
        prorations = billing.change_items(acct, sub, _changes(values["items"]), proration, proration_date)
    if "cancel_at_period_end" in values:
        _cancel_at_period_end(acct, sub, values["cancel_at_period_end"])
    if "cancel_at" in values:
        at = values["cancel_at"]
        if at is not None and at <= acct.now:
            raise invalid("`cancel_at` must be in the future.", "cancel_at")
        sub.cancel_at, sub.cancel_at_period_end = at, False
        sub.canceled_at = acct.now if at is not None else None
    trial_end = values.get("trial_end")
    if trial_end is not None and sub.status == "trialing":
        if trial_end == "now" or trial_end <= acct.now:
            invoicing.emit_updated(acct, sub, before)
            billing.end_trial(acct, sub, "subscription_update")
            return sub
        sub.trial_end = sub.period_end = trial_end
    invoicing.emit_updated(acct, sub, before)
    if proration == "always_invoice" and prorations:
        billing.invoice_prorations(acct, sub, prorations, invoicing.decide(acct, sub, customer))
    return sub


UPDATE_FIELDS: dict[str, f.Spec] = {
    "items": f.Arr(ITEM, max_items=20),
    "proration_behavior": PRORATION,
    "proration_date": f.Int(minimum=0),
    "cancel_at_period_end": f.Bool(),
    "cancel_at": f.Ts(nullable=True),
    "cancellation_details": CANCELLATION,
    "metadata": f.Metadata(),
    "trial_end": f.Ts(allow_now=True),
    "trial_settings": TRIAL_SETTINGS,
    "default_payment_method": f.Str(nullable=True),
    "description": f.Str(nullable=True),
    "payment_behavior": PAYMENT_BEHAVIOR,
    "billing_cycle_anchor": f.Enum("now", "unchanged"),
    "off_session": f.Bool(),
}


def update_subscription(c: Call) -> dict[str, Any]:
    values = c.read(UPDATE_FIELDS)
    values.pop("off_session", None)
    sub = apply_update(c.acct, c.acct.subscription(c.arg("id")), values)
    return render_billing.subscription(c.acct, sub)


def cancel_subscription(c: Call) -> dict[str, Any]:
    values = c.read({"invoice_now": f.Bool(), "prorate": f.Bool(), "cancellation_details": CANCELLATION})
    acct = c.acct
    sub = acct.subscription(c.arg("id"))
    if sub.status in ("canceled", "incomplete_expired"):
        raise invalid(f"No such subscription: '{sub.id}' (it has already been canceled)", "id", "resource_missing")
    details = values.get("cancellation_details") or {}
    billing.cancel_now(
        acct,
        sub,
        reason="cancellation_requested",
        comment=details.get("comment"),
        feedback=details.get("feedback"),
        prorate=values.get("prorate", False),
        invoice_now=values.get("invoice_now", False),
    )
    return render_billing.subscription(acct, sub)


def resume_subscription(c: Call) -> dict[str, Any]:
    c.read(
        {"billing_cycle_anchor": f.Enum("now", "unchanged"), "proration_behavior": PRORATION, "proration_date": f.Int()}
    )
    acct = c.acct
    sub = acct.subscription(c.arg("id"))
    if sub.status != "paused":
        raise invalid("Only subscriptions with `status=paused` can be resumed.", "subscription")
    sub.status = "trialing"  # resume = start the first paid period now, like a trial ending
    sub.trial_end = acct.now
    billing.end_trial(acct, sub, "subscription_update")
    acct.emit("customer.subscription.resumed", render_billing.subscription(acct, sub))
    return render_billing.subscription(acct, sub)


# ---- subscription items -----------------------------------------------------------------------------------


def _item(acct: Account, item_id: str) -> tuple[m.Subscription, m.SubItem]:
    found = acct.items.get(item_id)
    if found is None:
        raise no_such("subscription item", item_id)
    return acct.subscriptions[found[0]], found[1]


def list_items(c: Call) -> dict[str, Any]:
    filters = list_filters(c, {"subscription": f.Str()})
    if "subscription" not in filters:
        raise invalid("Missing required param: subscription.", "subscription", "parameter_missing")
    sub = c.acct.subscription(filters["subscription"], "subscription")
    return paginate(
        c,
        list(reversed(sub.items)),  # listed in the subscription's own order
        f"/v1/subscription_items?subscription={sub.id}",
        lambda item: render_billing.subscription_item(c.acct, sub, item),
        lambda item: item.id,
    )


def retrieve_item(c: Call) -> dict[str, Any]:
    c.read({})
    sub, item = _item(c.acct, c.arg("id"))
    return render_billing.subscription_item(c.acct, sub, item)


def update_item(c: Call) -> dict[str, Any]:
    values = c.read(
        {
            "price": f.Str(),
            "quantity": f.Int(minimum=0),
            "metadata": f.Metadata(),
            "proration_behavior": PRORATION,
            "proration_date": f.Int(minimum=0),
            "payment_behavior": PAYMENT_BEHAVIOR,
            "off_session": f.Bool(),
        }
    )
    sub, item = _item(c.acct, c.arg("id"))
    change: dict[str, Any] = {"id": item.id, **{k: values[k] for k in ("price", "quantity", "metadata") if k in values}}
    update: dict[str, Any] = {
        k: values[k] for k in ("proration_behavior", "proration_date", "payment_behavior") if k in values
    }
    apply_update(c.acct, sub, {"items": [change], **update})
    return render_billing.subscription_item(c.acct, sub, item)


def routes(api: Api) -> list[Route]:
    r = api.route
    return [
        r("POST", "/v1/subscriptions", create_subscription),
        r("GET", "/v1/subscriptions", list_subscriptions),
        r("GET", "/v1/subscriptions/{id}", retrieve_subscription),
        r("POST", "/v1/subscriptions/{id}", update_subscription),
        r("DELETE", "/v1/subscriptions/{id}", cancel_subscription),
        r("POST", "/v1/subscriptions/{id}/resume", resume_subscription),
        r("GET", "/v1/subscription_items", list_items),
        r("GET", "/v1/subscription_items/{id}", retrieve_item),
        r("POST", "/v1/subscription_items/{id}", update_item),
    ]
