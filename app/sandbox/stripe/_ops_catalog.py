"""Customers (with search and test-card payment methods), products and prices (lookup keys)."""

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

# Stripe's test-mode payment method tokens: attachable cards, the second declining every charge.
TEST_CARDS = {
    "pm_card_visa": ("4242", None),
    "pm_card_mastercard": ("4444", None),
    "pm_card_chargeCustomerFail": ("0341", "card_declined"),
}


def merge_metadata(current: dict[str, str], update: dict[str, str | None] | None) -> dict[str, str]:
    if update is None:
        return current
    if update == {}:
        return {}
    merged: dict[str, str | None] = {**current, **update}
    return {k: v for k, v in merged.items() if v is not None}


# ---- customers --------------------------------------------------------------------------------------------

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


# ---- products ---------------------------------------------------------------------------------------------

PRODUCT_FIELDS: dict[str, f.Spec] = {
    "name": f.Str(max_length=250),
    "description": f.Str(nullable=True, max_length=40000),
    "active": f.Bool(),
    "metadata": f.Metadata(),
    "unit_label": f.Str(nullable=True, max_length=12),
    "statement_descriptor": f.Str(nullable=True, max_length=22),
    "url": f.Str(nullable=True),
    "tax_code": f.Str(nullable=True),
}


def _apply_product(p: m.Product, values: dict[str, Any]) -> None:
    for name in ("name", "description", "active", "unit_label", "statement_descriptor", "url", "tax_code"):
        if name in values:
            setattr(p, name, values[name])
    p.metadata = merge_metadata(p.metadata, values.get("metadata"))


def create_product(c: Call) -> dict[str, Any]:
    values = c.read({**PRODUCT_FIELDS, "id": f.Str(max_length=250)}, required=("name",))
    acct = c.acct
    product_id = values.pop("id", None) or acct.ids.new("prod_", 14)
    if product_id in acct.products:
        raise invalid("Product already exists.", "id", "resource_already_exists")
    product = m.Product(id=product_id, created=acct.now, updated=acct.now, name=values["name"])
    _apply_product(product, values)
    acct.products[product.id] = product
    out = render.product(product)
    acct.emit("product.created", out)
    return out


def _product(acct: Account, product_id: str, param: str = "id") -> m.Product:
    found = acct.products.get(product_id)
    if found is None:
        raise no_such("product", product_id, param)
    return found


def retrieve_product(c: Call) -> dict[str, Any]:
    c.read({})
    return render.product(_product(c.acct, c.arg("id")))


def update_product(c: Call) -> dict[str, Any]:
    values = c.read({**PRODUCT_FIELDS, "default_price": f.Str()})
    product = _product(c.acct, c.arg("id"))
    before = render.product(product)
    if "default_price" in values:
        price = c.acct.price(values.pop("default_price"), "default_price")
        if price.product != product.id:
            raise invalid("The default price must belong to this product.", "default_price")
        product.default_price = price.id
    _apply_product(product, values)
    product.updated = c.acct.now
    out = render.product(product)
    c.acct.emit("product.updated", out, {k: v for k, v in before.items() if out.get(k) != v})
    return out


def list_products(c: Call) -> dict[str, Any]:
    filters = list_filters(c, {"active": f.Bool(), "ids": f.Arr(f.Str())})
    found = [
        p
        for p in c.acct.products.values()
        if ("active" not in filters or p.active == filters["active"])
        and ("ids" not in filters or p.id in filters["ids"])
    ]
    return paginate(c, found, "/v1/products", render.product, lambda p: p.id)


# ---- prices -----------------------------------------------------------------------------------------------

RECURRING = f.Obj(
    {
        "interval": f.Enum("day", "week", "month", "year"),
        "interval_count": f.Int(minimum=1, maximum=36),
        "usage_type": f.Enum("licensed", "metered"),
        "meter": f.Str(),
        "trial_period_days": f.Int(minimum=1, maximum=730),
    },
    required=("interval",),
)
PRICE_UPDATE: dict[str, f.Spec] = {
    "active": f.Bool(),
    "lookup_key": f.Str(nullable=True, max_length=200),
    "transfer_lookup_key": f.Bool(),
    "nickname": f.Str(nullable=True),
    "metadata": f.Metadata(),
    "tax_behavior": f.Enum("exclusive", "inclusive", "unspecified"),
}


def _claim_lookup_key(acct: Account, price: m.Price, lookup_key: str | None, transfer: bool) -> None:
    if lookup_key is not None:
        holder = acct.price_by_lookup_key(lookup_key)
        if holder is not None and holder.id != price.id:
            if not transfer:
                raise invalid(f"A price (`{holder.id}`) already uses that lookup key.", "lookup_key")
            holder.lookup_key = None
            acct.emit("price.updated", render.price(holder), {"lookup_key": lookup_key})
    price.lookup_key = lookup_key


def create_price(c: Call) -> dict[str, Any]:
    values = c.read(
        {
            **PRICE_UPDATE,
            "currency": f.Str(max_length=3),
            "product": f.Str(),
            "product_data": f.Obj(
                {"name": f.Str(), "metadata": f.Metadata(), "unit_label": f.Str()}, required=("name",)
            ),
            "unit_amount": f.Int(minimum=0),
            "unit_amount_decimal": f.Dec(),
            "recurring": RECURRING,
            "billing_scheme": f.Enum("per_unit"),
        },
        required=("currency",),
    )
    acct = c.acct
    if ("product" in values) == ("product_data" in values):
        raise invalid("You must specify exactly one of `product` or `product_data`.", "product")
    if "unit_amount" not in values and "unit_amount_decimal" not in values:
        raise invalid("Missing required param: unit_amount.", "unit_amount", "parameter_missing")
    if "product_data" in values:
        data = values["product_data"]
        product = m.Product(
            acct.ids.new("prod_", 14), acct.now, acct.now, data["name"], unit_label=data.get("unit_label")
        )
        product.metadata = merge_metadata({}, data.get("metadata"))
        acct.products[product.id] = product
        acct.emit("product.created", render.product(product))
    else:
        product = _product(acct, values["product"], "product")
    recurring = values.get("recurring") or {}
    usage_type = recurring.get("usage_type", "licensed")
    meter_id = recurring.get("meter")
    if usage_type == "metered" and meter_id is None:
        raise invalid("Metered prices must set `recurring[meter]`.", "recurring[meter]", "parameter_missing")
    if meter_id is not None and meter_id not in acct.meters:
        raise no_such("billing meter", meter_id, "recurring[meter]")
    price = m.Price(
        id=acct.ids.new("price_"),
        created=acct.now,
        product=product.id,
        currency=values["currency"].lower(),
        unit_amount=values.get("unit_amount"),
        unit_amount_decimal=values.get("unit_amount_decimal"),
        interval=recurring.get("interval"),
        interval_count=recurring.get("interval_count", 1),
        usage_type=usage_type,
        meter=meter_id,
        nickname=values.get("nickname"),
        active=values.get("active", True),
        metadata=merge_metadata({}, values.get("metadata")),
        tax_behavior=values.get("tax_behavior", "unspecified"),
        trial_period_days=recurring.get("trial_period_days"),
    )
    _claim_lookup_key(acct, price, values.get("lookup_key"), values.get("transfer_lookup_key", False))
    acct.prices[price.id] = price
    if product.default_price is None:
        product.default_price = price.id
    out = render.price(price)
    acct.emit("price.created", out)
    return out


def retrieve_price(c: Call) -> dict[str, Any]:
    c.read({})
    return render.price(c.acct.price(c.arg("id"), "id"))


def update_price(c: Call) -> dict[str, Any]:
    values = c.read(PRICE_UPDATE)
    price = c.acct.price(c.arg("id"), "id")
    before = render.price(price)
    if "lookup_key" in values:
        _claim_lookup_key(c.acct, price, values["lookup_key"], values.get("transfer_lookup_key", False))
    for name in ("active", "nickname", "tax_behavior"):
        if name in values:
            setattr(price, name, values[name])
    price.metadata = merge_metadata(price.metadata, values.get("metadata"))
    out = render.price(price)
    previous = {k: v for k, v in before.items() if out.get(k) != v}
    if previous:
        c.acct.emit("price.updated", out, previous)
    return out


def list_prices(c: Call) -> dict[str, Any]:
    filters = list_filters(
        c,
        {
            "active": f.Bool(),
            "currency": f.Str(),
            "product": f.Str(),
            "type": f.Enum("one_time", "recurring"),
            "lookup_keys": f.Arr(f.Str(), max_items=10),
            "recurring": f.Obj(
                {
                    "interval": f.Enum("day", "week", "month", "year"),
                    "usage_type": f.Enum("licensed", "metered"),
                    "meter": f.Str(),
                }
            ),
        },
    )

    def wanted(p: m.Price) -> bool:
        recurring = filters.get("recurring") or {}
        return (
            ("active" not in filters or p.active == filters["active"])
            and ("currency" not in filters or p.currency == filters["currency"])
            and ("product" not in filters or p.product == filters["product"])
            and ("type" not in filters or ("recurring" if p.interval else "one_time") == filters["type"])
            and ("lookup_keys" not in filters or p.lookup_key in filters["lookup_keys"])
            and all(getattr(p, k) == v for k, v in recurring.items())
        )

    found = [p for p in c.acct.prices.values() if wanted(p)]
    return paginate(c, found, "/v1/prices", render.price, lambda p: p.id)


def routes(api: Api) -> list[Route]:
    r = api.route
    return [
        r("POST", "/v1/customers", create_customer),
        r("GET", "/v1/customers", list_customers),
        r("GET", "/v1/customers/search", search_customers),
        r("GET", "/v1/customers/{id}", retrieve_customer),
        r("POST", "/v1/customers/{id}", update_customer),
        r("DELETE", "/v1/customers/{id}", delete_customer),
        r("POST", "/v1/products", create_product),
        r("GET", "/v1/products", list_products),
        r("GET", "/v1/products/{id}", retrieve_product),
        r("POST", "/v1/products/{id}", update_product),
        r("POST", "/v1/prices", create_price),
        r("GET", "/v1/prices", list_prices),
        r("GET", "/v1/prices/{id}", retrieve_price),
        r("POST", "/v1/prices/{id}", update_price),
    ]
