"""Customers (with search) and the payment methods Stripe's test cards make."""

from __future__ import annotations

import re
from typing import Any

from app.sandbox.stripe import _forms as f
from app.sandbox.stripe import _model as m
from app.sandbox.stripe import _render as render
from app.sandbox.stripe._account import Account
from app.sandbox.stripe._api import Api, Call, list_filters, paginate
from app.sandbox.stripe._billing import cancel_now
from app.sandbox.stripe._errors import invalid, no_such
from app.sandbox.stripe._http import Route
from app.sandbox.stripe._ops_catalog import merge_metadata

# Stripe's test-mode payment method tokens: attachable cards, the second declining every charge.
TEST_CARDS = {
    "pm_card_visa": ("4242", None),
    "pm_card_mastercard": ("4444", None),
    "pm_card_chargeCustomerFail": ("0341", "card_declined"),
}


CUSTOMER_FIELDS: dict[str, f.Spec] = {
    "email": f.Str(nullable=True, max_length=512),
    "name": f.Str(nullable=True, max_length=256),
    "description": f.Str(nullable=True),
    "phone": f.Str(nullable=True, max_length=20),
    "metadata": f.Metadata(),
    "payment_method": f.Str(),
    "invoice_settings": f.Obj({"default_payment_method": f.Str(nullable=True)}),
}


def attach_payment_method(acct: Account, customer: m.Customer, pm_id: str, param: str) -> m.PaymentMethod:
    """An existing payment method, or one made from a test token (`pm_card_visa`, …), attached to the customer."""
    if pm_id in TEST_CARDS:
        last4, decline = TEST_CARDS[pm_id]
        pm = m.PaymentMethod(acct.ids.new("pm_"), acct.now, customer.id, last4=last4, decline=decline)
        acct.payment_methods[pm.id] = pm
        return pm
    found = acct.payment_methods.get(pm_id)
    if found is None:
        raise no_such("PaymentMethod", pm_id, param)
    if found.customer not in (None, customer.id):
        raise invalid("The payment method you provided is already attached to another customer.", param)
    found.customer = customer.id
    return found


def _apply_customer(acct: Account, c: m.Customer, values: dict[str, Any]) -> None:
    for name in ("email", "name", "description", "phone"):
        if name in values:
            setattr(c, name, values[name])
    c.metadata = merge_metadata(c.metadata, values.get("metadata"))
    if values.get("payment_method"):
        pm = attach_payment_method(acct, c, values["payment_method"], "payment_method")
        acct.emit("payment_method.attached", render.payment_method(pm))
    settings = values.get("invoice_settings") or {}
    if "default_payment_method" in settings:
        pm_id = settings["default_payment_method"]
        if pm_id is None:
            c.default_payment_method = None
        else:
            pm = attach_payment_method(acct, c, pm_id, "invoice_settings[default_payment_method]")
            c.default_payment_method = pm.id


def create_customer(c: Call) -> dict[str, Any]:
    values = c.read(CUSTOMER_FIELDS)
    acct = c.acct
    customer = m.Customer(
        id=acct.ids.new("cus_", 14), created=acct.now, invoice_prefix=acct.ids.token(8).upper().replace("O", "0")
    )
    acct.customers[customer.id] = customer
    _apply_customer(acct, customer, values)
    out = render.customer(acct, customer)
    acct.emit("customer.created", out)
    return out


def retrieve_customer(c: Call) -> dict[str, Any]:
    c.read({})
    found = c.acct.customers.get(c.arg("id"))
    if found is None:
        raise no_such("customer", c.arg("id"))
    return render.customer(c.acct, found)


def update_customer(c: Call) -> dict[str, Any]:
    values = c.read(CUSTOMER_FIELDS)
    customer = c.acct.customer(c.arg("id"), "id")
    before = render.customer(c.acct, customer)
    _apply_customer(c.acct, customer, values)
    out = render.customer(c.acct, customer)
    previous = {k: v for k, v in before.items() if out.get(k) != v}
    if previous:
        c.acct.emit("customer.updated", out, previous)
    return out


def delete_customer(c: Call) -> dict[str, Any]:
    c.read({})
    acct = c.acct
    customer = acct.customer(c.arg("id"), "id")
    for sub in acct.subscriptions.values():
        if sub.customer == customer.id and sub.status not in ("canceled", "incomplete_expired"):
            cancel_now(acct, sub, reason="cancellation_requested")
    last = render.customer(acct, customer)
    customer.deleted = True
    acct.emit("customer.deleted", last)
    return render.customer(acct, customer)


def list_customers(c: Call) -> dict[str, Any]:
    filters = list_filters(c, {"email": f.Str(max_length=512), "created": f.Int()})
    found = [
        cu
        for cu in c.acct.customers.values()
        if not cu.deleted and ("email" not in filters or cu.email == filters["email"])
    ]
    return paginate(c, found, "/v1/customers", lambda cu: render.customer(c.acct, cu), lambda cu: cu.id)


_CLAUSE = re.compile(r"""^\s*(metadata\[['"]([^'"]+)['"]\]|email|name|phone)\s*:\s*(['"])(.*?)\3\s*$""")


def _matches(customer: m.Customer, clause: str) -> bool:
    match = _CLAUSE.match(clause)
    if match is None:
        raise invalid(f"Invalid search query: {clause.strip()!r} (the stand-in understands field:'value' clauses "
                      "on email, name, phone and metadata['key'])", "query")  # fmt: skip
    field, meta_key, _, value = match.groups()
    if meta_key is not None:
        return customer.metadata.get(meta_key) == value
    return getattr(customer, field) == value


def search_customers(c: Call) -> dict[str, Any]:
    values = f.read(
        {"query": f.Str(), "limit": f.Int(minimum=1, maximum=100), "page": f.Str(), "expand": f.EXPAND},
        c.raw,
        required=("query",),
    )
    c.expand = values.get("expand") or []
    query = values["query"]
    if " AND " in query and " OR " in query:
        raise invalid("Queries cannot mix AND and OR.", "query")
    combine = any if " OR " in query else all
    clauses = re.split(r"\s+(?:AND|OR)\s+", query)
    found = [
        cu for cu in reversed(c.acct.customers.values()) if not cu.deleted and combine(_matches(cu, q) for q in clauses)
    ]
    limit = values.get("limit") or 10
    start = int(values["page"]) if str(values.get("page") or "").isdigit() else 0
    page = found[start : start + limit]
    more = len(found) > start + limit
    out = {
        "object": "search_result",
        "data": [render.customer(c.acct, cu) for cu in page],
        "has_more": more,
        "next_page": str(start + limit) if more else None,
        "url": "/v1/customers/search",
    }
    if "total_count" in c.expand:
        c.expand.remove("total_count")
        out["total_count"] = len(found)
    return out


def routes(api: Api) -> list[Route]:
    r = api.route
    return [
        r("POST", "/v1/customers", create_customer),
        r("GET", "/v1/customers", list_customers),
        r("GET", "/v1/customers/search", search_customers),
        r("GET", "/v1/customers/{id}", retrieve_customer),
        r("POST", "/v1/customers/{id}", update_customer),
        r("DELETE", "/v1/customers/{id}", delete_customer),
    ]
