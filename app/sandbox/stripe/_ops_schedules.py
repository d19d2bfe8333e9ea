"""Subscription schedules (made `from_subscription`) and invoices (read, list, pay)."""

from __future__ import annotations

from typing import Any

from app.sandbox.stripe import _billing as billing
from app.sandbox.stripe import _forms as f
from app.sandbox.stripe import _invoicing as invoicing
from app.sandbox.stripe import _render_billing as render_billing
from app.sandbox.stripe import _schedules as schedules
from app.sandbox.stripe._api import Api, Call, list_filters, paginate
from app.sandbox.stripe._errors import invalid, unsupported
from app.sandbox.stripe._http import Route
from app.sandbox.stripe._ops_catalog import merge_metadata
from app.sandbox.stripe._ops_customers import attach_payment_method
from app.sandbox.stripe._ops_subscriptions import PRORATION
from app.sandbox.stripe._render_sessions import schedule as render_schedule

PHASE = f.Obj(
    {
        "items": f.Arr(
            f.Obj({"price": f.Str(), "quantity": f.Int(minimum=0), "metadata": f.Metadata()}, required=("price",)),
            max_items=20,
        ),
        "start_date": f.Ts(allow_now=True),
        "end_date": f.Ts(allow_now=True),
        "duration": f.Obj(
            {"interval": f.Enum("day", "week", "month", "year"), "interval_count": f.Int(minimum=1)},
            required=("interval",),
        ),
        "proration_behavior": PRORATION,
        "metadata": f.Metadata(),
        "trial_end": f.Ts(allow_now=True),
    },
    required=("items",),
)


def create_schedule(c: Call) -> dict[str, Any]:
    values = c.read(
        {
            "from_subscription": f.Str(),
            "customer": f.Str(),
            "phases": f.Arr(PHASE),
            "start_date": f.Ts(allow_now=True),
            "end_behavior": f.Enum("cancel", "none", "release", "renew"),
            "metadata": f.Metadata(),
        }
    )
    acct = c.acct
    if "from_subscription" not in values:
        raise unsupported("schedules that start new subscriptions (use `from_subscription`)", "from_subscription")
    extra = set(values) - {"from_subscription", "metadata"}
    if extra:
        raise invalid(f"You cannot set `{sorted(extra)[0]}` if `from_subscription` is set.", sorted(extra)[0])
    sub = acct.subscription(values["from_subscription"], "from_subscription")
    created = schedules.from_subscription(acct, sub, merge_metadata({}, values.get("metadata")))
    return render_schedule(acct, created)


def retrieve_schedule(c: Call) -> dict[str, Any]:
    c.read({})
    return render_schedule(c.acct, c.acct.schedule(c.arg("id"), "schedule"))


def update_schedule(c: Call) -> dict[str, Any]:
    values = c.read(
        {
            "phases": f.Arr(PHASE),
            "end_behavior": f.Enum("cancel", "none", "release", "renew"),
            "proration_behavior": PRORATION,
            "metadata": f.Metadata(),
        }
    )
    schedule = c.acct.schedule(c.arg("id"))
    phases = values.pop("phases", None)
    return render_schedule(c.acct, schedules.update(c.acct, schedule, phases, values))


def release_schedule(c: Call) -> dict[str, Any]:
    c.read({"preserve_cancel_date": f.Bool()})
    return render_schedule(c.acct, schedules.release(c.acct, c.acct.schedule(c.arg("id"))))


def cancel_schedule(c: Call) -> dict[str, Any]:
    c.read({"invoice_now": f.Bool(), "prorate": f.Bool()})
    return render_schedule(c.acct, schedules.cancel(c.acct, c.acct.schedule(c.arg("id"))))


def list_schedules(c: Call) -> dict[str, Any]:
    filters = list_filters(c, {"customer": f.Str(), "scheduled": f.Bool()})
    found = [s for s in c.acct.schedules.values() if "customer" not in filters or s.customer == filters["customer"]]
    return paginate(c, found, "/v1/subscription_schedules", lambda s: render_schedule(c.acct, s), lambda s: s.id)


# ---- invoices ---------------------------------------------------------------------------------------------


def retrieve_invoice(c: Call) -> dict[str, Any]:
    c.read({})
    return render_billing.invoice(c.acct, c.acct.invoice(c.arg("id"), "invoice"))


def list_invoices(c: Call) -> dict[str, Any]:
    filters = list_filters(
        c,
        {
            "customer": f.Str(),
            "subscription": f.Str(),
            "status": f.Enum("draft", "open", "paid", "uncollectible", "void"),
            "created": f.RANGE,
        },
    )
    found = [
        i
        for i in c.acct.invoices.values()
        if all(getattr(i, k) == v for k, v in filters.items() if k in ("customer", "subscription", "status"))
    ]
    return paginate(c, found, "/v1/invoices", lambda i: render_billing.invoice(c.acct, i), lambda i: i.id)


def invoice_lines(c: Call) -> dict[str, Any]:
    list_filters(c, {})
    inv = c.acct.invoice(c.arg("id"), "invoice")
    return paginate(
        c,
        list(reversed(inv.lines)),
        f"/v1/invoices/{inv.id}/lines",
        lambda line: render_billing.invoice_line(inv, line, c.acct),
        lambda line: line.id,
    )


def pay_invoice(c: Call) -> dict[str, Any]:
    values = c.read({"payment_method": f.Str(), "off_session": f.Bool(), "paid_out_of_band": f.Bool()})
    acct = c.acct
    inv = acct.invoice(c.arg("id"), "invoice")
    if inv.status == "paid":
        raise invalid("Invoice is already paid", "invoice", "invoice_already_paid")
    if inv.status != "open":
        raise invalid(f"You can only pay an invoice that is open; this one is `{inv.status}`.", "invoice")
    if values.get("paid_out_of_band"):
        raise unsupported("paying invoices out of band", "paid_out_of_band")
    if values.get("payment_method"):
        customer = acct.customers[inv.customer]
        pm = attach_payment_method(acct, customer, values["payment_method"], "payment_method")
        sub = acct.subscriptions.get(inv.subscription or "")
        if sub is not None:
            sub.default_payment_method = pm.id
        else:
            customer.default_payment_method = pm.id
    if not billing.pay_invoice(acct, inv):
        raise invoicing.declined_error(inv)
    return render_billing.invoice(acct, inv)


def routes(api: Api) -> list[Route]:
    r = api.route
    return [
        r("POST", "/v1/subscription_schedules", create_schedule),
        r("GET", "/v1/subscription_schedules", list_schedules),
        r("GET", "/v1/subscription_schedules/{id}", retrieve_schedule),
        r("POST", "/v1/subscription_schedules/{id}", update_schedule),
        r("POST", "/v1/subscription_schedules/{id}/release", release_schedule),
        r("POST", "/v1/subscription_schedules/{id}/cancel", cancel_schedule),
        r("GET", "/v1/invoices", list_invoices),
        r("GET", "/v1/invoices/{id}", retrieve_invoice),
        r("GET", "/v1/invoices/{id}/lines", invoice_lines),
        r("POST", "/v1/invoices/{id}/pay", pay_invoice),
    ]
