"""How the stand-in bills, over raw HTTP: subscriptions created directly (payment behaviours, incomplete
expiry), trials that end without a card, ending a trial now, metered usage on the invoice, customer credit
from a negative proration, cancellation with a final invoice, expiring Checkout sessions, deleted customers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.sandbox_server import StripeStandIn

START = 1_798_761_600  # 2027-01-01T00:00:00Z
DAY = 86_400


class Api:
    def __init__(self, http: httpx.AsyncClient, account: StripeStandIn) -> None:
        self.http = http
        self.account = account

    async def raw(self, method: str, path: str, data: Any = None) -> httpx.Response:
        url = self.account.api_base + path
        if method in ("GET", "DELETE"):
            return await self.http.request(method, url, params=data, headers=self.account.headers)
        return await self.http.post(url, data=data, headers=self.account.headers)

    async def __call__(self, method: str, path: str, data: Any = None) -> Any:
        response = await self.raw(method, path, data)
        assert response.status_code == 200, response.text
        return response.json()

    async def price(self, amount: str, **extra: str) -> dict[str, Any]:
        body = {"currency": "usd", "product_data[name]": f"P{amount}", "recurring[interval]": "month", **extra}
        key = "unit_amount_decimal" if "." in amount else "unit_amount"
        return dict(await self("POST", "/v1/prices", {key: amount, **body}))

    async def customer(self, card: str | None = "pm_card_visa") -> dict[str, Any]:
        body = {"email": "c@example.com"}
        if card:
            body["invoice_settings[default_payment_method]"] = card
        return dict(await self("POST", "/v1/customers", body))

    async def invoices(self, sub_id: str) -> list[dict[str, Any]]:
        return list((await self("GET", "/v1/invoices", {"subscription": sub_id, "limit": 100}))["data"])


@pytest.fixture
async def api(sandbox_url: str) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(timeout=30) as http:
        account = await StripeStandIn.create(http, sandbox_url.removesuffix("/sandbox"), seed=9, now=START)
        yield Api(http, account)
        await account.delete()


async def test_direct_subscriptions_follow_the_payment_behaviour(api: Api) -> None:
    price = await api.price("990")
    good = await api.customer()
    sub = await api("POST", "/v1/subscriptions", {"customer": good["id"], "items[0][price]": price["id"]})
    assert sub["status"] == "active"
    assert (await api.invoices(sub["id"]))[0]["status"] == "paid"

    failing = await api.customer("pm_card_chargeCustomerFail")
    refused = await api.raw(
        "POST",
        "/v1/subscriptions",
        {"customer": failing["id"], "items[0][price]": price["id"], "payment_behavior": "error_if_incomplete"},
    )
    assert refused.status_code == 402
    expected = {"type": "card_error", "code": "card_declined", "decline_code": "card_declined"}
    assert expected.items() <= refused.json()["error"].items()
    assert (await api("GET", "/v1/subscriptions", {"customer": failing["id"], "status": "all"}))["data"] == []

    allowed = await api("POST", "/v1/subscriptions", {"customer": failing["id"], "items[0][price]": price["id"]})
    assert allowed["status"] == "incomplete"
    waiting = await api(
        "POST",
        "/v1/subscriptions",
        {"customer": good["id"], "items[0][price]": price["id"], "payment_behavior": "default_incomplete"},
    )
    assert waiting["status"] == "incomplete"
    (first,) = await api.invoices(waiting["id"])
    assert first["status"] == "open" and first["attempt_count"] == 0
    await api.account.advance(seconds=23 * 3600)
    expired = await api("GET", f"/v1/subscriptions/{waiting['id']}")
    assert expired["status"] == "incomplete_expired"
    assert (await api("GET", f"/v1/invoices/{first['id']}"))["status"] == "void"


@pytest.mark.parametrize(
    ("behavior", "status"), [("cancel", "canceled"), ("pause", "paused"), ("create_invoice", "past_due")]
)
async def test_a_trial_that_ends_without_a_card(api: Api, behavior: str, status: str) -> None:
    price = await api.price("2990")
    customer = await api.customer(card=None)
    sub = await api(
        "POST",
        "/v1/subscriptions",
        {
            "customer": customer["id"],
            "items[0][price]": price["id"],
            "trial_period_days": "14",
            "trial_settings[end_behavior][missing_payment_method]": behavior,
        },
    )
    assert sub["status"] == "trialing" and sub["trial_end"] == START + 14 * DAY
    await api.account.advance(to_period_end=sub["id"])
    ended = await api("GET", f"/v1/subscriptions/{sub['id']}")
    assert ended["status"] == status
    if status == "paused":
        await api(
            "POST", f"/v1/customers/{customer['id']}", {"invoice_settings[default_payment_method]": "pm_card_visa"}
        )
        resumed = await api("POST", f"/v1/subscriptions/{sub['id']}/resume", {"billing_cycle_anchor": "now"})
        assert resumed["status"] == "active"
        assert (await api.invoices(sub["id"]))[0]["status"] == "paid"


async def test_ending_a_trial_now_bills_at_once(api: Api) -> None:
    price = await api.price("2990")
    customer = await api.customer()
    sub = await api(
        "POST",
        "/v1/subscriptions",
        {"customer": customer["id"], "items[0][price]": price["id"], "trial_period_days": "30"},
    )
    await api.account.advance(days=2)
    active = await api("POST", f"/v1/subscriptions/{sub['id']}", {"trial_end": "now"})
    assert active["status"] == "active" and active["trial_end"] == START + 2 * DAY
    assert active["items"]["data"][0]["current_period_start"] == START + 2 * DAY
    latest = (await api.invoices(sub["id"]))[0]
    assert (latest["billing_reason"], latest["amount_paid"]) == ("subscription_update", 2990)


async def test_metered_usage_is_billed_in_arrears(api: Api) -> None:
    meter = await api(
        "POST",
        "/v1/billing/meters",
        {"display_name": "Calls", "event_name": "calls", "default_aggregation[formula]": "sum"},
    )
    base = await api.price("990")
    usage = await api.price("0.5", **{"recurring[usage_type]": "metered", "recurring[meter]": meter["id"]})
    customer = await api.customer()
    sub = await api(
        "POST",
        "/v1/subscriptions",
        {"customer": customer["id"], "items[0][price]": base["id"], "items[1][price]": usage["id"]},
    )
    assert (await api.invoices(sub["id"]))[0]["amount_paid"] == 990  # usage is not billed in advance
    for n, value in enumerate(("100", "20", "100")):
        event = {"event_name": "calls", "payload[stripe_customer_id]": customer["id"], "payload[value]": value}
        await api("POST", "/v1/billing/meter_events", {**event, "identifier": f"u{n % 2}", "timestamp": str(START + n)})
    await api.account.advance(to_period_end=sub["id"])
    renewal = (await api.invoices(sub["id"]))[0]
    usage_line = next(li for li in renewal["lines"]["data"] if li["pricing"]["unit_amount_decimal"] == "0.5")
    assert (usage_line["quantity"], usage_line["amount"]) == (120, 60)  # the repeated identifier counted once
    assert usage_line["period"] == {"start": START, "end": START + 31 * DAY}
    assert renewal["total"] == 990 + 60


async def test_a_negative_proration_becomes_credit(api: Api) -> None:
    pro, starter = await api.price("2990"), await api.price("990")
    customer = await api.customer()
    sub = await api("POST", "/v1/subscriptions", {"customer": customer["id"], "items[0][price]": pro["id"]})
    item = sub["items"]["data"][0]["id"]
    await api.account.advance(days=10)
    await api(
        "POST",
        f"/v1/subscriptions/{sub['id']}",
        {"items[0][id]": item, "items[0][price]": starter["id"], "proration_behavior": "always_invoice"},
    )
    credit_note = (await api.invoices(sub["id"]))[0]
    net = round(990 * 21 / 31) - round(2990 * 21 / 31)  # each proration line is rounded on its own
    assert (credit_note["total"], credit_note["amount_due"], credit_note["status"]) == (net, 0, "paid")
    assert (await api("GET", f"/v1/customers/{customer['id']}"))["balance"] == net
    await api.account.advance(to_period_end=sub["id"])
    renewal = (await api.invoices(sub["id"]))[0]
    assert renewal["starting_balance"] == net and renewal["amount_due"] == max(0, 990 + net)


async def test_cancel_now_with_a_final_invoice(api: Api) -> None:
    price = await api.price("3100")
    customer = await api.customer()
    sub = await api("POST", "/v1/subscriptions", {"customer": customer["id"], "items[0][price]": price["id"]})
    await api.account.advance(days=21)
    canceled = await api("DELETE", f"/v1/subscriptions/{sub['id']}", {"prorate": "true", "invoice_now": "true"})
    assert canceled["status"] == "canceled" and canceled["cancellation_details"]["reason"] == "cancellation_requested"
    final = (await api.invoices(sub["id"]))[0]
    assert final["total"] == -1000 and final["amount_due"] == 0  # 10 unused days of 31 credited
    again = await api.raw("DELETE", f"/v1/subscriptions/{sub['id']}")
    assert again.status_code == 400


async def test_sessions_expire_and_deleted_customers_end_their_subscriptions(api: Api) -> None:
    price = await api.price("990")
    customer = await api.customer()
    session = await api(
        "POST",
        "/v1/checkout/sessions",
        {
            "mode": "subscription",
            "customer": customer["id"],
            "line_items[0][price]": price["id"],
            "line_items[0][quantity]": "1",
        },
    )
    sub = await api("POST", "/v1/subscriptions", {"customer": customer["id"], "items[0][price]": price["id"]})
    await api.account.advance(days=1)
    assert (await api("GET", f"/v1/checkout/sessions/{session['id']}"))["status"] == "expired"
    late = await api.raw("POST", f"/v1/checkout/sessions/{session['id']}/expire")
    assert late.status_code == 400
    gone = await api("DELETE", f"/v1/customers/{customer['id']}")
    assert gone == {"id": customer["id"], "object": "customer", "deleted": True}
    assert (await api("GET", f"/v1/subscriptions/{sub['id']}"))["status"] == "canceled"
    types = [e["type"] for e in await api.account.events()]
    assert types[-2:] == ["customer.subscription.deleted", "customer.deleted"]
