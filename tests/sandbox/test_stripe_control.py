"""The stand-in's control API and webhook delivery: seeds, checkout completion, signed deliveries in any
order or many at once, retries of failed deliveries, the hosted Checkout page, problem documents."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import stripe

from tests.fakes.receiver import Receiver
from tests.sandbox_server import StripeStandIn

SECRET = "whsec_control_tests_0123456789"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().serve() as served:
        yield served


@pytest.fixture
def base(sandbox_url: str) -> str:
    return sandbox_url.removesuffix("/sandbox")


async def call(http: httpx.AsyncClient, account: StripeStandIn, method: str, path: str, data: Any = None) -> Any:
    if method == "GET":
        response = await http.get(account.api_base + path, params=data, headers=account.headers)
    else:
        response = await http.post(account.api_base + path, data=data, headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def start_checkout(http: httpx.AsyncClient, account: StripeStandIn, **extra: str) -> dict[str, Any]:
    customer = await call(http, account, "POST", "/v1/customers", {"email": "owner@example.com"})
    price = await call(
        http,
        account,
        "POST",
        "/v1/prices",
        {"currency": "usd", "product_data[name]": "Pro", "unit_amount": "2990", "recurring[interval]": "month"},
    )
    body = {
        "mode": "subscription",
        "customer": customer["id"],
        "line_items[0][price]": price["id"],
        "line_items[0][quantity]": "1",
        "success_url": "https://shop.example/ok?session={CHECKOUT_SESSION_ID}",
        **extra,
    }
    return dict(await call(http, account, "POST", "/v1/checkout/sessions", body))


async def test_same_seed_gives_the_same_objects(http: httpx.AsyncClient, base: str) -> None:
    async def run(seed: int) -> list[str]:
        account = await StripeStandIn.create(http, base, seed=seed, now=1_800_000_000)
        session = await start_checkout(http, account)
        done = await account.complete_checkout(session["id"])
        await account.advance(to_period_end=done["subscription"])
        events = await account.events()
        await account.delete()
        return [session["id"], done["customer"], done["subscription"], done["invoice"], *(e["id"] for e in events)]

    first, second, other = await run(5), await run(5), await run(6)
    assert first == second
    assert set(first).isdisjoint(other)


async def test_control_errors_are_problem_documents(http: httpx.AsyncClient, base: str) -> None:
    control = base + "/sandbox/control/stripe"
    missing = await http.get(control + "/accounts/acct_nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["status"] == 404
    account = await StripeStandIn.create(http, base, now=1_800_000_000)
    backwards = await http.post(account.control + "/advance", json={"to": 1_700_000_000})
    assert backwards.status_code == 422 and "only moves forward" in backwards.json()["detail"]
    both = await http.post(account.control + "/advance", json={"days": 1, "seconds": 5})
    assert both.status_code == 422
    broken = await http.post(account.control + "/advance", content=b"{", headers={"content-type": "application/json"})
    assert broken.status_code == 400
    unknown = await http.post(account.control + "/checkout_sessions/cs_test_nope/complete", json={})
    assert unknown.status_code == 404
    clash = await http.post(control + "/accounts", json={"secret_key": account.secret_key})
    assert clash.status_code == 409
    assert (await http.delete(control + "/accounts/x/events")).status_code == 405
    await account.delete()


async def test_a_declined_checkout_stays_open(http: httpx.AsyncClient, base: str, receiver: Receiver) -> None:
    account = await StripeStandIn.create(http, base, webhook_url=receiver.url("/hook"), webhook_secret=SECRET)
    session = await start_checkout(http, account)
    declined = await account.complete_checkout_response(session["id"], card="pm_card_chargeCustomerFail")
    assert declined.status_code == 402
    assert "declined" in declined.json()["detail"]
    assert (await call(http, account, "GET", f"/v1/checkout/sessions/{session['id']}"))["status"] == "open"
    await account.fail_payments(times=1)
    assert (await account.complete_checkout_response(session["id"])).status_code == 402
    done = await account.complete_checkout(session["id"])
    assert done["status"] == "complete"
    await account.flush()
    completed = [r.json() for r in receiver.at("/hook") if r.json()["type"] == "checkout.session.completed"]
    assert [e["data"]["object"]["subscription"] for e in completed] == [done["subscription"]]
    await account.delete()


def verify(received: Any, secret: str = SECRET) -> dict[str, Any]:
    """The receiver side exactly as in production: the SDK on the raw body."""
    event = stripe.Webhook.construct_event(received.body, received.headers["stripe-signature"], secret)
    return dict(event.to_dict())


async def test_deliveries_are_signed_like_stripe(http: httpx.AsyncClient, base: str, receiver: Receiver) -> None:
    account = await StripeStandIn.create(http, base, webhook_url=receiver.url("/hook"), webhook_secret=SECRET)
    await call(http, account, "POST", "/v1/customers", {"email": "s@example.com"})
    await account.flush()
    (received,) = receiver.at("/hook")
    header = received.headers["stripe-signature"]
    parts = dict(item.split("=", 1) for item in header.split(","))
    assert set(parts) == {"t", "v1"} and abs(int(parts["t"]) - time.time()) < 60
    expected = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + received.body, hashlib.sha256).hexdigest()
    assert parts["v1"] == expected
    assert verify(received)["type"] == "customer.created"
    with pytest.raises(stripe.SignatureVerificationError):
        verify(received, "whsec_someone_else_000000")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(received.body + b" ", header, SECRET)
    assert received.headers["content-type"].startswith("application/json")
    await account.delete()


async def test_manual_delivery_in_any_order_and_many_times(
    http: httpx.AsyncClient, base: str, receiver: Receiver
) -> None:
    account = await StripeStandIn.create(
        http, base, delivery="manual", webhook_url=receiver.url("/hook"), webhook_secret=SECRET
    )
    session = await start_checkout(http, account)
    await account.complete_checkout(session["id"])
    events = await account.events()
    assert events and not receiver.at("/hook")  # held until the test says so
    created = next(e["id"] for e in events if e["type"] == "customer.subscription.created")
    completed = next(e["id"] for e in events if e["type"] == "checkout.session.completed")
    await account.deliver([completed, created])
    assert [verify(r)["id"] for r in receiver.at("/hook")] == [completed, created]

    deliveries = await account.deliver([created], times=25, concurrent=True)
    assert len(deliveries) == 25 and all(d["status"] == 200 for d in deliveries)
    storm = receiver.at("/hook")[2:]
    assert len(storm) == 25
    assert {verify(r)["id"] for r in storm} == {created}
    await account.flush()  # what was not delivered by hand goes now, in order
    rest = [verify(r)["id"] for r in receiver.at("/hook")[27:]]
    assert rest == [e["id"] for e in events if e["id"] not in (created, completed)]
    await account.delete()


async def test_a_failed_delivery_is_retried_when_the_clock_passes(
    http: httpx.AsyncClient, base: str, receiver: Receiver
) -> None:
    account = await StripeStandIn.create(http, base, webhook_url=receiver.url("/flaky"), webhook_secret=SECRET)
    receiver.script("/flaky", 500)
    customer = await call(http, account, "POST", "/v1/customers", {"email": "r@example.com"})
    await account.flush()
    (event,) = await account.events()
    assert event["pending_webhooks"] == 1 and event["deliveries"][0]["status"] == 500
    api_event = await call(http, account, "GET", f"/v1/events/{event['id']}")
    assert api_event["pending_webhooks"] == 1
    await account.advance(seconds=1800)
    await account.flush()
    assert len(receiver.at("/flaky")) == 1  # not yet: the first retry is an hour later
    await account.advance(seconds=1800)
    await account.flush()
    (event,) = await account.events()
    assert [d["status"] for d in event["deliveries"]] == [500, 200] and event["pending_webhooks"] == 0
    assert verify(receiver.at("/flaky")[-1])["data"]["object"]["id"] == customer["id"]
    await account.delete()


async def test_reset_keeps_the_key_and_the_webhook(http: httpx.AsyncClient, base: str, receiver: Receiver) -> None:
    account = await StripeStandIn.create(
        http, base, now=1_800_000_000, webhook_url=receiver.url("/hook"), webhook_secret=SECRET
    )
    await call(http, account, "POST", "/v1/customers", {"email": "x@example.com"})
    await account.advance(days=3)
    await account.reset()
    summary = await account.summary()
    assert summary["now"] == 1_800_000_000 and summary["counts"]["customers"] == 0
    assert [e["secret"] for e in summary["webhook_endpoints"]] == [SECRET]
    assert (await call(http, account, "GET", "/v1/customers"))["data"] == []
    await account.delete()


async def test_the_hosted_checkout_page_pays(http: httpx.AsyncClient, base: str) -> None:
    account = await StripeStandIn.create(http, base)
    session = await start_checkout(http, account)
    assert session["url"].startswith(account.api_base + "/checkout/cs_test_")
    page = await http.get(session["url"])
    assert page.status_code == 200 and "Pay with card 4242" in page.text
    declined = await http.post(session["url"], data={"action": "decline"})
    assert "declined" in declined.text
    paid = await http.post(session["url"], data={"action": "pay"})
    assert paid.status_code == 303
    assert paid.headers["location"] == f"https://shop.example/ok?session={session['id']}"
    done = await call(http, account, "GET", f"/v1/checkout/sessions/{session['id']}")
    assert done["status"] == "complete" and done["payment_status"] == "paid" and done["url"] is None
    portal = await call(
        http,
        account,
        "POST",
        "/v1/billing_portal/sessions",
        {"customer": done["customer"], "return_url": "https://shop.example/account"},
    )
    cancel = await http.post(portal["url"], data={"subscription": done["subscription"], "action": "cancel"})
    assert cancel.status_code == 303
    sub = await call(http, account, "GET", f"/v1/subscriptions/{done['subscription']}")
    assert sub["cancel_at_period_end"] is True
    await account.delete()


async def test_events_api_filters(http: httpx.AsyncClient, base: str) -> None:
    account = await StripeStandIn.create(http, base)
    session = await start_checkout(http, account)
    await account.complete_checkout(session["id"])
    invoices = await call(http, account, "GET", "/v1/events", {"type": "invoice.*", "limit": 100})
    assert invoices["data"] and all(e["type"].startswith("invoice.") for e in invoices["data"])
    paid = await call(http, account, "GET", "/v1/events", {"types[]": ["invoice.paid", "checkout.session.completed"]})
    assert sorted(e["type"] for e in paid["data"]) == ["checkout.session.completed", "invoice.paid"]
    first = (await account.events())[0]
    assert json.dumps(await call(http, account, "GET", f"/v1/events/{first['id']}"))
    await account.delete()
