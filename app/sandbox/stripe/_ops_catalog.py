"""Products and prices (lookup keys, transfer of a lookup key to a new price)."""

from __future__ import annotations

from typing import Any

from app.sandbox.stripe import _forms as f
from app.sandbox.stripe import _model as m
from app.sandbox.stripe import _render as render
from app.sandbox.stripe._account import Account
from app.sandbox.stripe._api import Api, Call, list_filters, paginate
from app.sandbox.stripe._errors import invalid, no_such
from app.sandbox.stripe._http import Route


def merge_metadata(current: dict[str, str], update: dict[str, str | None] | None) -> dict[str, str]:
    if update is None:
        return current
    if update == {}:
        return {}
    merged: dict[str, str | None] = {**current, **update}
    return {k: v for k, v in merged.items() if v is not None}


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
        r("POST", "/v1/products", create_product),
        r("GET", "/v1/products", list_products),
        r("GET", "/v1/products/{id}", retrieve_product),
        r("POST", "/v1/products/{id}", update_product),
        r("POST", "/v1/prices", create_price),
        r("GET", "/v1/prices", list_prices),
        r("GET", "/v1/prices/{id}", retrieve_price),
        r("POST", "/v1/prices/{id}", update_price),
    ]
