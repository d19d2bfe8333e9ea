"""Every object the Stripe stand-in returns has the shape of Stripe's own example of its type.

The examples are `../shared/reference/stripe/fixtures.json` beside the checkout (copied from Stripe's
published OpenAPI fixtures; never copied into this repository). A scenario drives every endpoint over real
HTTP with form-encoded bodies; every JSON object it gets back — in responses, in webhook deliveries and in
the events API, nested ones included — is checked against the example of its `object` type: the same keys,
values of the same JSON type (null allowed where the example has a value: the examples fill nullable fields),
the same `object` value and id prefix. Objects nested in a polymorphic place (an event's `data.object`) are
checked against their own type. Types without an example (subscription schedules, payment methods) and
every object's top-level keys are also checked against the official SDK's field list for the type.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from tests.fakes.receiver import Receiver
from tests.sandbox_server import StripeStandIn, run_sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
# `../shared` beside the checkout (a worktree may sit one level deeper: the nearest one up wins).
FIXTURES = next(
    (
        p / "shared/reference/stripe/fixtures.json"
        for p in REPO_ROOT.parents
        if (p / "shared/reference/stripe").is_dir()
    ),
    REPO_ROOT.parent / "shared/reference/stripe/fixtures.json",
)

# Examples nested in another example stand for their own type too.
NESTED = {"line_item": ("invoice", "lines", "data", 0), "plan": ("subscription", "items", "data", 0, "plan")}
# Stripe documents these beside the example's fields: an update event's old values; the signing secret,
# shown once in the answer that creates a webhook endpoint; a search result's count when asked for.
EXTRA_KEYS = {"event.data": {"previous_attributes"}, "webhook_endpoint": {"secret"}}
POLYMORPHIC = {"event.data.object", "event.data.previous_attributes"}
# Prefixes the README gives where the example holds a placeholder id.
PREFIXES = {"billing.meter": "mtr_", "plan": "price_"}
# Fields Stripe's example still carries that the SDK no longer lists (the example wins; both are Stripe's).
EXAMPLE_ONLY = {"invoice": {"subscription"}}
NO_EXAMPLE = {"subscription_schedule": stripe.SubscriptionSchedule, "payment_method": stripe.PaymentMethod}
SDK_TYPES: dict[str, Any] = {
    "customer": stripe.Customer,
    "product": stripe.Product,
    "price": stripe.Price,
    "plan": stripe.Plan,
    "subscription": stripe.Subscription,
    "subscription_item": stripe.SubscriptionItem,
    "invoice": stripe.Invoice,
    "line_item": stripe.InvoiceLineItem,
    "checkout.session": stripe.checkout.Session,
    "billing_portal.session": stripe.billing_portal.Session,
    "billing_portal.configuration": stripe.billing_portal.Configuration,
    "event": stripe.Event,
    "webhook_endpoint": stripe.WebhookEndpoint,
    "billing.meter": stripe.billing.Meter,
    "billing.meter_event": stripe.billing.MeterEvent,
    "billing.meter_event_summary": stripe.billing.MeterEventSummary,
    **NO_EXAMPLE,
}


@pytest.fixture(scope="module")
def examples() -> dict[str, Any]:
    if not FIXTURES.is_file():
        message = f"Stripe fixtures not found at {FIXTURES}; the stand-in's shapes were not checked"
        if os.environ.get("STOCK_TRACKER_REQUIRE_SPECS") == "1":
            pytest.fail(message + " (STOCK_TRACKER_REQUIRE_SPECS=1)")
        pytest.skip(message)
    resources = json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]
    out = dict(resources)
    for name, path in NESTED.items():
        node: Any = resources[path[0]]
        for step in path[1:]:
            node = node[step]
        out[name] = node
    return out


def sdk_fields(cls: type) -> set[str]:
    fields: set[str] = set()
    for klass in cls.__mro__:
        fields |= set(getattr(klass, "__annotations__", {}))
    return fields


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def compare(example: Any, actual: Any, label: str, kind: str, path: str, problems: list[str]) -> None:
    """Same keys and JSON types as the example, recursively (free-form maps, `{}` in the example, excepted).

    ``path`` is where we are inside the object (`items.data[].price`), for messages and the exceptions."""
    where = f"{label} {path or '(top)'}"
    if example is None or actual is None:
        return
    if isinstance(example, str) and isinstance(actual, dict) and "object" in actual:
        return  # an expanded id (`expand[]`): the object is checked as its own type
    if json_type(example) != json_type(actual):
        problems.append(f"{where}: {json_type(actual)} where Stripe has {json_type(example)}")
        return
    if isinstance(example, dict) and example:
        missing = sorted(set(example) - set(actual))
        extra = sorted(set(actual) - set(example) - EXTRA_KEYS.get(f"{kind}.{path}" if path else kind, set()))
        if missing:
            problems.append(f"{where}: missing {missing}")
        if extra:
            problems.append(f"{where}: not in Stripe's example {extra}")
        for name in set(example) & set(actual):
            child = f"{path}.{name}" if path else name
            if f"{kind}.{child}" not in POLYMORPHIC:
                compare(example[name], actual[name], label, kind, child, problems)
    elif isinstance(example, list) and example:
        for item in actual:
            compare(example[0], item, label, kind, f"{path}[]", problems)


def objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object carrying an `object` field, at any depth."""
    if isinstance(value, dict):
        if isinstance(value.get("object"), str):
            yield value
        for item in value.values():
            yield from objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from objects(item)


def check_object(obj: dict[str, Any], examples: dict[str, Any], problems: list[str]) -> str | None:
    kind = obj["object"]
    if kind in ("list", "search_result"):
        expected = {"object", "data", "has_more", "url"} | ({"next_page"} if kind == "search_result" else set())
        if set(obj) - {"total_count"} != expected:
            problems.append(f"{kind}: keys {sorted(obj)}")
        return None
    label = f"{kind} {obj.get('id', '')}".strip()
    if obj.get("deleted") is True:
        if set(obj) != set(examples["deleted_customer"]):
            problems.append(f"deleted {label}: keys {sorted(obj)}")
        return f"deleted_{kind}"
    if kind in NO_EXAMPLE:
        unknown = set(obj) - sdk_fields(NO_EXAMPLE[kind])
        if unknown:
            problems.append(f"{label}: fields the SDK does not know {sorted(unknown)}")
        return kind
    example = examples.get(kind)
    if example is None:
        problems.append(f"{label}: an object type with no example to check against")
        return kind
    compare(example, obj, label, kind, "", problems)
    if "id" in example:
        prefix = PREFIXES.get(kind) or example["id"].split("_")[0] + "_"
        if not str(obj.get("id", "")).startswith(prefix):
            problems.append(f"{label}: id should start with {prefix}")
    unknown = set(obj) - sdk_fields(SDK_TYPES[kind]) - {"object"} - EXAMPLE_ONLY.get(kind, set())
    if unknown:
        problems.append(f"{label}: fields the SDK does not know {sorted(unknown)}")
    return kind


# ---- the scenario ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_base() -> Iterator[str]:
    with run_sandbox() as base:
        yield base


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


class Collector:
    """Calls the stand-in's API like the SDK does (form bodies) and keeps every answer."""

    def __init__(self, http: httpx.AsyncClient, account: StripeStandIn) -> None:
        self.http = http
        self.account = account
        self.answers: list[Any] = []

    async def call(self, method: str, path: str, data: dict[str, Any] | None = None) -> Any:
        url = self.account.api_base + path
        if method == "GET":
            resp = await self.http.get(url, params=data, headers=self.account.headers)
        else:
            resp = await self.http.request(method, url, data=data, headers=self.account.headers)
        assert resp.status_code == 200, f"{method} {path}: {resp.text}"
        body = resp.json()
        self.answers.append(body)
        return body


async def run_scenario(c: Collector, account: StripeStandIn) -> None:
    customer = await c.call("POST", "/v1/customers", {"email": "owner@example.com", "metadata[tenant_id]": "t-1"})
    await c.call("POST", f"/v1/customers/{customer['id']}", {"name": "Owner"})
    await c.call("GET", "/v1/customers", {"limit": 5})
    await c.call("GET", "/v1/customers/search", {"query": "metadata['tenant_id']:'t-1'"})
    meter = await c.call(
        "POST",
        "/v1/billing/meters",
        {"display_name": "API calls", "event_name": "api_calls", "default_aggregation[formula]": "sum"},
    )
    await c.call("GET", "/v1/billing/meters")
    product = await c.call("POST", "/v1/products", {"name": "Pro"})
    pro = await c.call(
        "POST",
        "/v1/prices",
        {
            "product": product["id"],
            "currency": "usd",
            "unit_amount": "2990",
            "recurring[interval]": "month",
            "lookup_key": "pro_m",
        },
    )
    starter = await c.call(
        "POST",
        "/v1/prices",
        {"product_data[name]": "Starter", "currency": "usd", "unit_amount": "990", "recurring[interval]": "month"},
    )
    metered = await c.call(
        "POST",
        "/v1/prices",
        {
            "product": product["id"],
            "currency": "usd",
            "unit_amount_decimal": "0.5",
            "recurring[interval]": "month",
            "recurring[usage_type]": "metered",
            "recurring[meter]": meter["id"],
        },
    )
    await c.call("GET", "/v1/prices", {"lookup_keys[]": "pro_m", "expand[]": "data.product"})
    session = await c.call(
        "POST",
        "/v1/checkout/sessions",
        {
            "mode": "subscription",
            "customer": customer["id"],
            "client_reference_id": "t-1",
            "line_items[0][price]": starter["id"],
            "line_items[0][quantity]": "1",
            "line_items[1][price]": metered["id"],
            "success_url": "https://example.com/ok",
            "subscription_data[trial_period_days]": "14",
            "metadata[tenant_id]": "t-1",
        },
    )
    done = await account.complete_checkout(session["id"])
    await c.call("GET", f"/v1/checkout/sessions/{session['id']}")
    await c.call("GET", "/v1/checkout/sessions", {"customer": customer["id"]})
    sub_id = done["subscription"]
    sub = await c.call("GET", f"/v1/subscriptions/{sub_id}", {"expand[]": ["latest_invoice", "customer"]})
    item = sub["items"]["data"][0]
    await c.call("GET", "/v1/subscription_items", {"subscription": sub_id})
    await c.call("GET", f"/v1/subscription_items/{item['id']}")
    await c.call(
        "POST",
        "/v1/billing/meter_events",
        {
            "event_name": "api_calls",
            "payload[stripe_customer_id]": customer["id"],
            "payload[value]": "40",
            "identifier": "e1",
        },
    )
    now = (await account.summary())["now"]
    start = now - now % 86400
    await c.call(
        "GET",
        f"/v1/billing/meters/{meter['id']}/event_summaries",
        {"customer": customer["id"], "start_time": start, "end_time": start + 86400, "value_grouping_window": "hour"},
    )
    await account.advance(to_period_end=sub_id)
    await c.call(
        "POST",
        f"/v1/subscriptions/{sub_id}",
        {"items[0][id]": item["id"], "items[0][price]": pro["id"], "proration_behavior": "always_invoice"},
    )
    invoices = await c.call("GET", "/v1/invoices", {"subscription": sub_id, "limit": 10})
    await c.call("GET", f"/v1/invoices/{invoices['data'][0]['id']}/lines")
    schedule = await c.call("POST", "/v1/subscription_schedules", {"from_subscription": sub_id})
    phase = schedule["phases"][0]
    await c.call(
        "POST",
        f"/v1/subscription_schedules/{schedule['id']}",
        {
            "phases[0][items][0][price]": pro["id"],
            "phases[0][items][1][price]": metered["id"],
            "phases[0][start_date]": phase["start_date"],
            "phases[0][end_date]": phase["end_date"],
            "phases[1][items][0][price]": starter["id"],
            "phases[1][items][1][price]": metered["id"],
            "phases[1][duration][interval]": "month",
            "end_behavior": "release",
        },
    )
    await account.fail_payments(times=1)
    await account.advance(to_period_end=sub_id)
    failed = await c.call("GET", "/v1/invoices", {"subscription": sub_id, "status": "open"})
    await c.call("POST", f"/v1/invoices/{failed['data'][0]['id']}/pay")
    await c.call("POST", "/v1/billing_portal/configurations", {"features[invoice_history][enabled]": "true"})
    await c.call("GET", "/v1/billing_portal/configurations")
    await c.call(
        "POST",
        "/v1/billing_portal/sessions",
        {
            "customer": customer["id"],
            "return_url": "https://example.com/account",
            "flow_data[type]": "subscription_cancel",
            "flow_data[subscription_cancel][subscription]": sub_id,
        },
    )
    await c.call("POST", f"/v1/subscription_schedules/{schedule['id']}/release")
    await c.call("POST", f"/v1/subscriptions/{sub_id}", {"cancel_at_period_end": "true"})
    endpoint = await c.call(
        "POST", "/v1/webhook_endpoints", {"url": "https://example.com/hook", "enabled_events[]": "*"}
    )
    await c.call("POST", f"/v1/webhook_endpoints/{endpoint['id']}", {"disabled": "true"})
    await c.call("GET", "/v1/webhook_endpoints")
    await c.call("DELETE", f"/v1/webhook_endpoints/{endpoint['id']}")
    await account.advance(days=40)
    other = await c.call("POST", "/v1/customers", {"email": "gone@example.com"})
    await c.call("DELETE", f"/v1/customers/{other['id']}")
    events = await c.call("GET", "/v1/events", {"limit": 100})
    await c.call("GET", f"/v1/events/{events['data'][0]['id']}")


async def test_every_object_matches_stripes_example(
    examples: dict[str, Any], sandbox_base: str, http: httpx.AsyncClient
) -> None:
    with Receiver().serve() as receiver:
        account = await StripeStandIn.create(http, sandbox_base, seed=11, webhook_url=receiver.url("/stripe"))
        collector = Collector(http, account)
        await run_scenario(collector, account)
        await account.flush()
        delivered = [r.json() for r in receiver.at("/stripe")]
        sent = await account.events()
    assert len(delivered) == len(sent) > 40
    problems: list[str] = []
    seen: set[str] = set()
    for answer in [*collector.answers, *delivered]:
        for obj in objects(answer):
            kind = check_object(obj, examples, problems)
            if kind:
                seen.add(kind)
    unique = sorted(set(problems))
    assert not unique, f"{len(unique)} shape problems:\n" + "\n".join(unique[:60])
    expected = set(json.loads(FIXTURES.read_text())["resources"]) - {"deleted_customer"}
    assert expected <= seen, f"types never returned: {sorted(expected - seen)}"
    assert {"deleted_customer", "deleted_webhook_endpoint", "line_item", "plan", "subscription_schedule"} <= seen


def test_the_check_catches_a_wrong_shape(examples: dict[str, Any]) -> None:
    """The comparison itself must be able to fail."""
    problems: list[str] = []
    customer = {**examples["customer"], "id": "cus_1", "balance": "0", "surprise": 1}
    del customer["email"]
    check_object(customer, examples, problems)
    assert any("missing ['email']" in p for p in problems)
    assert any("surprise" in p for p in problems)
    assert any("balance" in p and "string" in p for p in problems)
    problems.clear()
    check_object({**examples["price"], "id": "prod_1"}, examples, problems)
    assert any("id should start with price_" in p for p in problems)
