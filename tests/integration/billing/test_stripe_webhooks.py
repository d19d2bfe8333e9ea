"""`POST /api/v1/billing/stripe/webhook`: verify on the raw body → store once → 200 → a job re-reads the
subscription. A storm of one event ×50 at once and a pair delivered newest-first each leave one effect."""

from __future__ import annotations

import json
import secrets
import time
import uuid

from app.sandbox.stripe import signature_header
from tests.conftest import unique_email
from tests.fakes import drain

from .conftest import WEBHOOK_PATH, World


async def stored(world: World, event_id: str) -> list[dict[str, object]]:
    rows = await world.sql("SELECT id, processed_at, outcome FROM stripe_events WHERE id = $1", event_id)
    return [dict(r) for r in rows]


async def plan_changes(world: World, tenant: str) -> list[tuple[str, str, str]]:
    rows = await world.sql(
        "SELECT from_plan, to_plan, to_status FROM plan_changes WHERE tenant_id = $1 ORDER BY created_at",
        uuid.UUID(tenant),
    )
    return [(r["from_plan"], r["to_plan"], r["to_status"]) for r in rows]


async def published(world: World, tenant: str, kind: str) -> int:
    rows = await world.sql(
        "SELECT count(*) AS n FROM events WHERE tenant_id = $1 AND type = $2", uuid.UUID(tenant), kind
    )
    return int(rows[0]["n"])


def signed(secret: str, body: bytes, at: int | None = None) -> dict[str, str]:
    """Headers as Stripe sends them, signed with ``secret`` at ``at`` (now by default)."""
    return {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": signature_header(secret, body, int(time.time()) if at is None else at),
    }


async def test_unverifiable_webhooks_are_refused_and_nothing_is_stored(world: World) -> None:
    secret = world.settings.stripe_webhook_secret
    event_id = "evt_" + secrets.token_hex(12)
    body = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "customer.subscription.updated",
            "created": int(time.time()),
            "livemode": False,
            "api_version": "2026-10-28.endive",
            "data": {"object": {"id": "sub_x", "object": "subscription", "customer": "cus_x"}},
        }
    ).encode()
    stale = int(time.time()) - 301
    for headers, payload in (
        ({}, body),  # no signature
        ({"Stripe-Signature": f"t={int(time.time())},v1={'0' * 64}"}, body),  # a wrong one
        (signed(secret, body, stale), body),  # stale timestamp
        (signed(secret, body), body.replace(b"sub_x", b"sub_y")),  # body changed after signing
        (signed("whsec_someone_else_0123456789", body), body),  # another endpoint's secret
    ):
        resp = await world.api.post(
            WEBHOOK_PATH, content=payload, headers={**headers, "Content-Type": "application/json"}
        )
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] == "invalid_signature"
        assert resp.headers["content-type"].startswith("application/problem+json")
    assert await stored(world, event_id) == []
    # Signed correctly it is stored once; a repeat is acknowledged as a duplicate.
    ok = await world.api.post(WEBHOOK_PATH, content=body, headers=signed(secret, body))
    again = await world.api.post(WEBHOOK_PATH, content=body, headers=signed(secret, body))
    assert ok.status_code == again.status_code == 200
    assert ok.json() == {"received": True, "duplicate": False} and again.json()["duplicate"] is True
    assert len(await stored(world, event_id)) == 1
    # An event billing does not react to is kept (so its repeats are recognised) and marked ignored.
    other = body.replace(b"customer.subscription.updated", b"product.created").replace(
        event_id.encode(), b"evt_o" + event_id[4:].encode()
    )
    assert (await world.api.post(WEBHOOK_PATH, content=other, headers=signed(secret, other))).status_code == 200
    (row,) = await stored(world, "evt_o" + event_id[4:])
    assert row["outcome"] == "ignored" and row["processed_at"] is not None


async def test_the_same_event_fifty_times_at_once_has_one_effect(world: World) -> None:
    owner = await world.register("Storm shop")
    tenant = owner["tenant"]["id"]
    await world.standin.set_delivery("manual")
    await world.checkout(owner, "pro")
    (completed,) = await world.standin.events("checkout.session.completed")
    deliveries = await world.standin.deliver([completed["id"]], times=50, concurrent=True)
    assert len(deliveries) == 50 and all(d["status"] == 200 for d in deliveries), deliveries
    assert len(await stored(world, completed["id"])) == 1
    await drain(world.settings)  # only that event's job: the others are still held by the stand-in
    ((_, processed_at, outcome),) = [tuple(r.values()) for r in await stored(world, completed["id"])]
    assert processed_at is not None and outcome == "applied"
    assert await plan_changes(world, tenant) == [("trial", "pro", "active")]
    assert await published(world, tenant, "billing.plan_changed") == 1
    # The rest of checkout's events, and the storm's event once more after it was processed: nothing new.
    await world.standin.flush()
    await world.standin.deliver([completed["id"]], times=5, concurrent=True)
    await world.settle()
    assert await plan_changes(world, tenant) == [("trial", "pro", "active")]
    assert await published(world, tenant, "billing.plan_changed") == 1
    state = await world.billing(owner)
    assert (state["plan"], state["status"]) == ("pro", "active")


async def test_an_older_update_delivered_after_a_newer_one_cannot_roll_back(world: World) -> None:
    owner = await world.register("Reordered shop")
    tenant = owner["tenant"]["id"]
    done = await world.checkout(owner, "pro")
    await world.settle()
    await world.standin.set_delivery("manual")
    # Two changes made at Stripe (the portal, say): an upgrade, then a cancellation at the period's end.
    enterprise = await world.stripe.price_for_plan("enterprise")
    await world.stripe.change_price_now(done["subscription"], enterprise.id)
    await world.stripe.cancel_at_period_end(done["subscription"])
    updates = await world.standin.events("customer.subscription.updated")
    older, newer = updates[-2]["id"], updates[-1]["id"]
    # Newest first, then the older one (whose payload still says "not canceling").
    await world.standin.deliver([newer])
    await world.settle()
    await world.standin.deliver([older])
    await world.settle()
    state = await world.billing(owner)
    assert (state["plan"], state["cancel_at_period_end"]) == ("enterprise", True)
    assert await plan_changes(world, tenant) == [("trial", "pro", "active"), ("pro", "enterprise", "active")]
    assert await published(world, tenant, "billing.plan_changed") == 2
    rows = await world.sql("SELECT id, outcome FROM stripe_events WHERE id = ANY($1::text[])", [newer, older])
    # Whichever of the two is processed first applies Stripe's current state (re-read, never the payload's);
    # the other finds nothing to change. Which one comes first is the queue's business, not the contract.
    assert sorted(r["outcome"] for r in rows) == ["applied", "unchanged"]


async def test_an_event_for_a_customer_we_do_not_know_is_set_aside(world: World) -> None:
    stranger = await world.stripe.find_or_create_customer(str(uuid.uuid4()), email=unique_email("stranger"))
    await world.standin.flush()
    price = await world.stripe.price_for_plan("starter")
    session = await world.stripe.create_checkout_session(
        tenant_id=str(uuid.uuid4()),
        customer_id=stranger.id,
        price_id=price.id,
        success_url="https://app.example/ok",
        cancel_url="https://app.example/no",
    )
    await world.standin.complete_checkout(session.id)
    await world.settle()
    (completed,) = await world.standin.events("checkout.session.completed")
    ((_, processed_at, outcome),) = [tuple(r.values()) for r in await stored(world, completed["id"])]
    assert processed_at is not None and outcome == "unknown_organization"
