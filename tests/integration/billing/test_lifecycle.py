"""A subscription's whole life over real HTTP, the official SDK talking to the Stripe stand-in and its signed
webhooks arriving at the API: sign-up → trial → checkout → pro → upgrade → downgrade pending → period end
applies it → payment failed → past_due → paid → cancel at period end → canceled → read-only."""

from __future__ import annotations

from typing import Any

from tests.fakes.receiver import Receiver
from tests.fakes.telegram import FakeTelegram, link_chat, new_chat_id

from .conftest import World


async def changes(world: World, tenant_id: str) -> list[dict[str, Any]]:
    rows = await world.sql(
        "SELECT from_plan, to_plan, from_status, to_status, cause, actor_user_id, stripe_event_id "
        "FROM plan_changes WHERE tenant_id = $1 ORDER BY created_at, id",
        __import__("uuid").UUID(tenant_id),
    )
    return [dict(r) for r in rows]


async def test_a_subscription_from_sign_up_to_read_only(
    world: World, receiver: Receiver, telegram_api: FakeTelegram
) -> None:
    owner = await world.register("Lifecycle shop")
    tenant = owner["tenant"]["id"]
    h = owner["headers"]

    # Sign-up: a trial on the trial plan, no card, nothing at Stripe.
    state = await world.billing(owner)
    assert (state["status"], state["plan"], state["read_only"]) == ("trialing", "trial", False)
    assert state["trial_ends_at"] is not None and state["usage"]["connections"]["limit"] == 1
    assert (await world.standin.summary())["counts"]["customers"] == 0

    # The owner follows billing events by webhook and in Telegram.
    hook = receiver.url(f"/billing/{tenant}")
    made = await world.api.post(
        "/api/v1/webhook-endpoints",
        json={"url": hook, "event_types": ["billing.plan_changed", "billing.payment_failed"]},
        headers=h,
    )
    assert made.status_code == 201, made.text
    chat = new_chat_id()
    await link_chat(world.api, h, world.settings, telegram_api, chat)

    # Checkout completed → pro, active.
    done = await world.checkout(owner, "pro")
    await world.settle()
    state = await world.billing(owner)
    assert (state["status"], state["plan"], state["read_only"]) == ("active", "pro", False)
    assert state["usage"]["connections"]["limit"] == 3 and state["current_period_end"] is not None
    sub_id = done["subscription"]
    customer = done["customer"]
    (account,) = await world.sql("SELECT stripe_customer_id FROM billing_accounts WHERE tenant_id = $1", _uuid(tenant))
    assert account["stripe_customer_id"] == customer  # one customer per organization, kept

    # Upgrade: at once, prorated, answered with the new state.
    up = await world.api.post("/api/v1/billing/change", json={"plan": "enterprise"}, headers=h)
    assert up.status_code == 200, up.text
    assert (up.json()["plan"], up.json()["status"]) == ("enterprise", "active")
    await world.settle()  # the webhook that follows finds nothing left to change

    # Downgrade: pending until the period ends.
    down = await world.api.post("/api/v1/billing/change", json={"plan": "starter"}, headers=h)
    assert down.status_code == 200, down.text
    assert down.json()["plan"] == "enterprise"
    assert down.json()["pending_change"]["plan"] == "starter"
    await world.settle()
    assert (await world.billing(owner))["pending_change"]["plan"] == "starter"

    # The period ends: the downgrade applies.
    await world.standin.advance(to_period_end=sub_id)
    await world.settle()
    state = await world.billing(owner)
    assert (state["plan"], state["status"], state["pending_change"]) == ("starter", "active", None)

    # A renewal payment fails: past_due (still usable while Stripe retries), and billing.payment_failed.
    await world.standin.fail_payments(times=1)
    await world.standin.advance(to_period_end=sub_id)
    await world.settle()
    state = await world.billing(owner)
    assert (state["status"], state["read_only"]) == ("past_due", False)

    # Stripe's retry goes through: active again.
    await world.standin.advance(days=3)
    await world.settle()
    assert (await world.billing(owner))["status"] == "active"

    # Cancel at the period's end, then the period ends: canceled, read-only, data kept.
    cancel = await world.api.post("/api/v1/billing/cancel", json={"at_period_end": True}, headers=h)
    assert cancel.status_code == 200 and cancel.json()["cancel_at_period_end"] is True, cancel.text
    await world.settle()
    await world.standin.advance(to_period_end=sub_id)
    await world.settle()
    state = await world.billing(owner)
    assert (state["status"], state["read_only"]) == ("canceled", True)
    assert any("read-only" in n for n in state["notices"])
    refused = await world.api.post("/api/v1/api-keys", json={"name": "after the end", "scopes": ["read"]}, headers=h)
    assert refused.status_code == 402 and refused.json()["code"] == "payment_required", refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await world.api.get("/api/v1/webhook-endpoints", headers=h)).status_code == 200  # reads go on
    # …and what it needs to pay again still works.
    again = await world.api.post("/api/v1/billing/checkout", json={"plan": "pro"}, headers=h)
    assert again.status_code == 201, again.text

    # Every change was recorded once, with its cause and where it came from.
    recorded = await changes(world, tenant)
    assert [(c["from_plan"], c["to_plan"], c["to_status"], c["cause"]) for c in recorded] == [
        ("trial", "pro", "active", "checkout"),
        ("pro", "enterprise", "active", "upgrade"),
        ("enterprise", "starter", "active", "scheduled_change"),
        ("starter", "starter", "past_due", "payment_failed"),
        ("starter", "starter", "active", "payment_recovered"),
        ("starter", "starter", "canceled", "canceled"),
    ]
    assert recorded[1]["actor_user_id"] is not None and recorded[1]["stripe_event_id"] is None  # the owner asked
    assert all(c["stripe_event_id"] for i, c in enumerate(recorded) if i != 1)  # the rest came from Stripe

    # The events reached the owner's webhook and Telegram (billing.payment_failed once, for the one failure).
    published = await world.sql(
        "SELECT type, data FROM events WHERE tenant_id = $1 AND type LIKE 'billing.%' ORDER BY created_at",
        _uuid(tenant),
    )
    assert [r["type"] for r in published].count("billing.plan_changed") == 5
    assert [r["type"] for r in published].count("billing.payment_failed") == 1
    delivered = {r.json()["type"] for r in receiver.wait_for(f"/billing/{tenant}", 6)}
    assert delivered == {"billing.plan_changed", "billing.payment_failed"}
    texts = [c.text for c in telegram_api.wait_sent(chat, 3)]
    assert any("payment" in t and "failed" in t for t in texts), texts
    assert any("enterprise" in t for t in texts), texts


def _uuid(value: str) -> Any:
    import uuid

    return uuid.UUID(value)
