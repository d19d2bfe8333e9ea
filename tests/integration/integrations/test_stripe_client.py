"""`StripeGateway` through the official SDK over real HTTP against the sandbox's Stripe stand-in: the billing
lifecycle the domain will drive (checkout, trial, upgrade with proration, downgrade at period end, failed and
recovered payments, cancellation), webhooks verified with `stripe.Webhook.construct_event`, usage meters,
and Stripe's failures arriving as our errors."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import stripe

from app.config import Settings
from app.integrations.stripe import (
    CatalogEntry,
    StripeAuthError,
    StripeCardDeclined,
    StripeGateway,
    StripeInvalidRequest,
    StripeNotConfigured,
    StripeNotFound,
    StripeUnavailable,
    Subscription,
    WebhookSignatureError,
    price_lookup_key,
)
from app.integrations.stripe.errors import translate
from tests.fakes import free_port
from tests.fakes.receiver import Receiver
from tests.sandbox_server import StripeStandIn, run_sandbox

SECRET = "whsec_client_tests_0123456789"
START = 1_798_761_600  # 2027-01-01T00:00:00Z: calendar months make the proration arithmetic checkable
PLANS = [
    CatalogEntry("starter", "Starter", 990),
    CatalogEntry("pro", "Pro", 2990),
    CatalogEntry("enterprise", "Enterprise", 9990),
]


@pytest.fixture(scope="module")
def sandbox_base() -> Iterator[str]:
    with run_sandbox() as base:
        yield base


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver().serve() as served:
        yield served


@dataclass
class World:
    stripe: StripeGateway
    standin: StripeStandIn
    receiver: Receiver
    hook: str

    async def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Delivered webhooks, each verified as the app will verify it."""
        await self.standin.flush()
        out = []
        for received in self.receiver.at(self.hook):
            event = self.stripe.verify_webhook(received.body, received.headers.get("stripe-signature"))
            sdk_event = stripe.Webhook.construct_event(received.body, received.headers["stripe-signature"], SECRET)
            assert sdk_event.id == event.id
            if kind is None or event.type == kind:
                out.append(json.loads(received.body))
        return out

    async def subscribe(self, plan: str, *, trial_days: int | None = None, tenant: str = "org-1") -> Subscription:
        customer = await self.stripe.find_or_create_customer(tenant, email=f"{tenant}@example.com")
        price = await self.stripe.price_for_plan(plan)
        session = await self.stripe.create_checkout_session(
            tenant_id=tenant,
            customer_id=customer.id,
            price_id=price.id,
            success_url="https://app.example/billing?ok",
            cancel_url="https://app.example/billing",
            trial_days=trial_days,
        )
        done = await self.standin.complete_checkout(session.id)
        return await self.stripe.get_subscription(done["subscription"])


@pytest.fixture
async def world(sandbox_base: str, receiver: Receiver) -> AsyncIterator[World]:
    async with httpx.AsyncClient(timeout=30) as http:
        hook = f"/stripe/{time.monotonic_ns()}"
        standin = await StripeStandIn.create(
            http, sandbox_base, seed=21, now=START, webhook_url=receiver.url(hook), webhook_secret=SECRET
        )
        gateway = StripeGateway(standin.secret_key, webhook_secret=SECRET, api_base=standin.api_base)
        await gateway.sync_catalog(PLANS)
        try:
            yield World(gateway, standin, receiver, hook)
        finally:
            await gateway.aclose()
            await standin.delete()


def test_without_a_key_billing_is_off() -> None:
    with pytest.raises(StripeNotConfigured):
        StripeGateway("")
    with pytest.raises(StripeNotConfigured):
        StripeGateway.from_settings(Settings())


async def test_catalog_sync_creates_keeps_and_replaces(world: World) -> None:
    again = await world.stripe.sync_catalog(PLANS)
    assert [r.action for r in again] == ["unchanged"] * 3
    pro = again[1].price
    assert pro.lookup_key == price_lookup_key("pro") == "stock_tracker_pro_monthly" and pro.plan_code == "pro"
    assert pro.product == "stock_tracker_pro" and pro.unit_amount == 2990
    changed = await world.stripe.sync_catalog([CatalogEntry("pro", "Pro", 3490)])
    assert changed[0].action == "replaced" and changed[0].replaced_price == pro.id
    current = await world.stripe.price_for_plan("pro")
    assert current.id == changed[0].price.id and current.unit_amount == 3490
    with pytest.raises(StripeNotFound):
        await world.stripe.price_for_plan("platinum")


async def test_one_customer_per_organization(world: World) -> None:
    first, second = await asyncio.gather(
        world.stripe.find_or_create_customer("org-7", email="a@example.com"),
        world.stripe.find_or_create_customer("org-7", email="a@example.com"),
    )
    assert first.id == second.id and first.tenant_id == "org-7"
    assert (await world.stripe.find_or_create_customer("org-7", customer_id=first.id)).id == first.id
    assert (await world.stripe.find_or_create_customer("org-7")).id == first.id  # found by search
    other = await world.stripe.find_or_create_customer("org-8", customer_id="cus_gone")
    assert other.id != first.id and other.tenant_id == "org-8"


async def test_trial_checkout_then_paid_period(world: World) -> None:
    sub = await world.subscribe("pro", trial_days=14)
    assert sub.status == "trialing" and sub.plan_code == "pro"
    assert sub.metadata["tenant_id"] == "org-1" and sub.trial_end == START + 14 * 86400
    completed = await world.events("checkout.session.completed")
    assert completed[0]["data"]["object"]["client_reference_id"] == "org-1"
    await world.standin.advance(to_period_end=sub.id)
    sub = await world.stripe.get_subscription(sub.id)
    assert sub.status == "active" and sub.current_period_start == START + 14 * 86400
    invoice = await world.stripe.get_invoice(sub.latest_invoice or "")
    assert (invoice.status, invoice.amount_paid, invoice.subscription_id) == ("paid", 2990, sub.id)
    types = [e["type"] for e in await world.events()]
    assert "customer.subscription.trial_will_end" in types and types.count("invoice.paid") == 2


async def test_upgrade_is_prorated(world: World) -> None:
    sub = await world.subscribe("starter")
    length = sub.current_period_end - sub.current_period_start
    await world.standin.advance(days=10)
    remaining = sub.current_period_end - (START + 10 * 86400)
    pro = await world.stripe.price_for_plan("pro")
    upgraded = await world.stripe.change_price_now(sub.id, pro.id)
    assert upgraded.plan_code == "pro" and upgraded.status == "active"
    assert len(await world.stripe.list_invoices(subscription_id=sub.id)) == 1  # prorations wait for the next invoice
    await world.standin.advance(to_period_end=sub.id)
    renewal = (await world.stripe.list_invoices(subscription_id=sub.id))[0]
    credit, charge = round(-990 * remaining / length), round(2990 * remaining / length)
    prorations = sorted(line.amount for line in renewal.line_items if line.proration)
    assert prorations == [credit, charge]
    assert renewal.total == credit + charge + 2990 and renewal.status == "paid"

    enterprise = await world.stripe.price_for_plan("enterprise")
    await world.standin.advance(days=5)
    await world.stripe.change_price_now(sub.id, enterprise.id, proration_behavior="always_invoice")
    now_billed = (await world.stripe.list_invoices(subscription_id=sub.id))[0]
    assert now_billed.billing_reason == "subscription_update" and now_billed.status == "paid"
    assert len([line for line in now_billed.line_items if line.proration]) == 2 and now_billed.amount_paid > 0


async def test_downgrade_waits_for_the_period_end(world: World) -> None:
    sub = await world.subscribe("pro")
    starter = await world.stripe.price_for_plan("starter")
    schedule = await world.stripe.change_price_at_period_end(sub.id, starter.id)
    pending = schedule.upcoming_phase(START)
    assert pending is not None and pending.start_date == sub.current_period_end
    assert [i.price for i in pending.items] == [starter.id]
    again = await world.stripe.change_price_at_period_end(sub.id, starter.id)  # a repeat replaces, not adds
    assert again.id == schedule.id and len(again.phases) == 2
    assert (await world.stripe.get_subscription(sub.id)).plan_code == "pro"
    await world.standin.advance(to_period_end=sub.id)
    moved = await world.stripe.get_subscription(sub.id)
    assert moved.plan_code == "starter" and moved.status == "active"
    assert (await world.stripe.get_invoice(moved.latest_invoice or "")).total == 990
    await world.standin.advance(to_period_end=sub.id)
    released = await world.stripe.get_subscription(sub.id)
    assert released.schedule is None and released.plan_code == "starter"
    assert (await world.stripe.get_schedule(schedule.id)).status == "released"
    assert {"subscription_schedule.created", "subscription_schedule.released"} <= {
        e["type"] for e in await world.events()
    }


async def test_a_pending_downgrade_can_be_dropped(world: World) -> None:
    sub = await world.subscribe("pro")
    starter = await world.stripe.price_for_plan("starter")
    schedule = await world.stripe.change_price_at_period_end(sub.id, starter.id)
    released = await world.stripe.release_schedule(schedule.id)
    assert released.status == "released" and released.upcoming_phase(START) is None
    await world.standin.advance(to_period_end=sub.id)
    assert (await world.stripe.get_subscription(sub.id)).plan_code == "pro"


async def test_failed_payment_is_past_due_until_paid(world: World) -> None:
    sub = await world.subscribe("pro")
    await world.standin.fail_payments(times=1)
    await world.standin.advance(to_period_end=sub.id)
    late = await world.stripe.get_subscription(sub.id)
    assert late.status == "past_due"
    invoice = await world.stripe.get_invoice(late.latest_invoice or "")
    assert (invoice.status, invoice.attempt_count) == ("open", 1)
    assert invoice.next_payment_attempt == late.current_period_start + 3 * 86400
    failed = await world.events("invoice.payment_failed")
    assert failed[0]["data"]["object"]["id"] == invoice.id
    await world.standin.advance(days=3)  # Stripe's retry; this time the card goes through
    recovered = await world.stripe.get_subscription(sub.id)
    assert recovered.status == "active"
    assert (await world.stripe.get_invoice(invoice.id)).status == "paid"
    updates = [
        e for e in await world.events("customer.subscription.updated") if "status" in e["data"]["previous_attributes"]
    ]
    assert [e["data"]["object"]["status"] for e in updates][-2:] == ["past_due", "active"]


async def test_payment_failing_every_retry_cancels(world: World) -> None:
    sub = await world.subscribe("starter")
    await world.standin.fail_payments(times=None)
    await world.standin.advance(to_period_end=sub.id)
    await world.standin.advance(days=16)
    ended = await world.stripe.get_subscription(sub.id)
    assert ended.status == "canceled"
    assert ended.cancellation_details is not None and ended.cancellation_details.reason == "payment_failed"
    assert (await world.events("customer.subscription.deleted"))[0]["data"]["object"]["id"] == sub.id


async def test_cancel_at_period_end_resume_and_cancel_now(world: World) -> None:
    sub = await world.subscribe("pro")
    starter = await world.stripe.price_for_plan("starter")
    await world.stripe.change_price_at_period_end(sub.id, starter.id)
    ending = await world.stripe.cancel_at_period_end(sub.id)  # drops the pending downgrade first
    assert ending.cancel_at_period_end and ending.status == "active" and ending.schedule is None
    assert ending.cancel_at == sub.current_period_end
    resumed = await world.stripe.resume(sub.id)
    assert not resumed.cancel_at_period_end and resumed.cancel_at is None
    await world.stripe.cancel_at_period_end(sub.id)
    await world.standin.advance(to_period_end=sub.id)
    canceled = await world.stripe.get_subscription(sub.id)
    assert canceled.status == "canceled" and canceled.ended_at == sub.current_period_end
    deleted = await world.events("customer.subscription.deleted")
    assert [e["data"]["object"]["id"] for e in deleted] == [sub.id]

    other = await world.subscribe("starter", tenant="org-2")
    now = await world.stripe.cancel_now(other.id, comment="closing the shop")
    assert now.status == "canceled" and now.ended_at == START + 31 * 86400
    with pytest.raises(StripeInvalidRequest):
        await world.stripe.cancel_at_period_end(other.id)
    assert [s.id for s in await world.stripe.list_subscriptions(now.customer)] == [other.id]


async def test_portal_session(world: World) -> None:
    customer = await world.stripe.find_or_create_customer("org-3")
    portal = await world.stripe.create_portal_session(customer_id=customer.id, return_url="https://app.example/billing")
    assert portal.url.startswith(world.standin.api_base + "/portal/bps_") and portal.customer == customer.id


async def test_webhook_verification_refuses_what_stripe_would(world: World) -> None:
    await world.stripe.find_or_create_customer("org-4")
    await world.standin.flush()
    received = world.receiver.at(world.hook)[-1]
    header = received.headers["stripe-signature"]
    event = world.stripe.verify_webhook(received.body, header)
    assert event.type == "customer.created" and event.object_type == "customer"
    assert (await world.stripe.get_event(event.id)).id == event.id
    stale_t = int(time.time()) - 301
    stale_sig = hmac.new(SECRET.encode(), f"{stale_t}.".encode() + received.body, hashlib.sha256).hexdigest()
    not_json = b"not json"
    signed_junk = (
        f"t={int(time.time())},v1="
        + hmac.new(SECRET.encode(), f"{int(time.time())}.".encode() + not_json, hashlib.sha256).hexdigest()
    )
    for body, signature in (
        (received.body.replace(b"customer.created", b"customer.deleted"), header),
        (received.body, f"t={stale_t},v1={stale_sig}"),
        (received.body, None),
        (received.body, "t=1,v0=abc"),
        (not_json, signed_junk),
    ):
        with pytest.raises(WebhookSignatureError):
            world.stripe.verify_webhook(body, signature)
    unverifiable = StripeGateway(world.standin.secret_key, api_base=world.standin.api_base)
    with pytest.raises(WebhookSignatureError):
        unverifiable.verify_webhook(received.body, header)
    await unverifiable.aclose()


async def test_usage_is_counted_once(world: World) -> None:
    meter = await world.stripe.ensure_meter("api_calls", "API calls")
    assert (await world.stripe.ensure_meter("api_calls", "API calls")).id == meter.id
    customer = await world.stripe.find_or_create_customer("org-5")
    hour = START - START % 3600
    for n, value in enumerate((40, 2, 8)):
        event = await world.stripe.report_meter_event(
            event_name="api_calls",
            customer_id=customer.id,
            value=value,
            identifier=f"org-5:api:{n}",
            timestamp=hour + n,
        )
        assert not event.duplicate
    again = await world.stripe.report_meter_event(
        event_name="api_calls", customer_id=customer.id, value=40, identifier="org-5:api:0", timestamp=hour
    )  # a worker that crashed after sending re-sends: same identifier, same request
    assert again.identifier == "org-5:api:0"
    (summary,) = await world.stripe.meter_event_summaries(
        meter.id, customer_id=customer.id, start=hour, end=hour + 3600
    )
    assert summary.aggregated_value == 50
    hourly = await world.stripe.meter_event_summaries(
        meter.id, customer_id=customer.id, start=hour, end=hour + 3 * 3600, window="hour"
    )
    assert [row.aggregated_value for row in hourly] == [50, 0, 0]
    assert [row.start_time for row in hourly] == [hour, hour + 3600, hour + 7200]
    counted = [e for e in await world.standin.meter_events() if e["counted"]]
    assert len(counted) == 3


async def test_failures_arrive_as_our_errors(world: World) -> None:
    with pytest.raises(StripeNotFound) as missing:
        await world.stripe.get_subscription("sub_nope")
    assert missing.value.status == 404 and missing.value.param == "id" and missing.value.request_id
    customer = await world.stripe.find_or_create_customer("org-6")
    with pytest.raises(StripeNotFound) as bad_price:
        await world.stripe.create_checkout_session(
            tenant_id="org-6",
            customer_id=customer.id,
            price_id="price_nope",
            success_url="https://a",
            cancel_url="https://b",
        )
    assert bad_price.value.param == "line_items[0][price]"
    wrong_key = StripeGateway("sk_test_not_a_real_key_123", api_base=world.standin.api_base)
    with pytest.raises(StripeAuthError) as auth:
        await wrong_key.get_customer(customer.id)
    assert "sk_test_not_a_real_key_123" not in str(auth.value)
    await wrong_key.aclose()
    nobody = StripeGateway("sk_test_abc", api_base=f"http://127.0.0.1:{free_port()}", max_network_retries=0, timeout=2)
    with pytest.raises(StripeUnavailable) as down:
        await nobody.get_customer("cus_x")
    assert down.value.transient and down.value.status is None
    await nobody.aclose()


def test_card_errors_keep_their_decline_code() -> None:
    body = {
        "error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds", "message": "No."}
    }
    error = translate(stripe.CardError("No.", None, "card_declined", http_status=402, json_body=body))
    assert isinstance(error, StripeCardDeclined)
    assert (error.code, error.decline_code, error.status, error.transient) == (
        "card_declined",
        "insufficient_funds",
        402,
        False,
    )


async def test_a_trial_without_a_card_ends_as_configured(world: World) -> None:
    customer = await world.stripe.find_or_create_customer("org-9")
    pro = await world.stripe.price_for_plan("pro")
    session = await world.stripe.create_checkout_session(
        tenant_id="org-9",
        customer_id=customer.id,
        price_id=pro.id,
        success_url="https://app.example/ok",
        cancel_url="https://app.example/no",
        trial_days=14,
        card_optional_in_trial=True,
        trial_end_without_card="cancel",
    )
    done = await world.standin.complete_checkout(session.id, card=None)
    assert (await world.stripe.get_checkout_session(session.id)).payment_status == "no_payment_required"
    await world.standin.advance(days=14)
    ended = await world.stripe.get_subscription(done["subscription"])
    assert ended.status == "canceled" and ended.ended_at == START + 14 * 86400


async def test_a_downgrade_during_the_trial_applies_when_it_ends(world: World) -> None:
    sub = await world.subscribe("pro", trial_days=14)
    starter = await world.stripe.price_for_plan("starter")
    schedule = await world.stripe.change_price_at_period_end(sub.id, starter.id)
    pending = schedule.upcoming_phase(START)
    assert pending is not None and pending.start_date == sub.trial_end
    still = await world.stripe.get_subscription(sub.id)
    assert still.status == "trialing" and still.plan_code == "pro"
    await world.standin.advance(to_period_end=sub.id)
    paid = await world.stripe.get_subscription(sub.id)
    assert (paid.status, paid.plan_code) == ("active", "starter")
    assert (await world.stripe.get_invoice(paid.latest_invoice or "")).amount_paid == 990
