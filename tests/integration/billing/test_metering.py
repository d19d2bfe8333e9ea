"""Usage to Stripe's meters: API calls per hour and synced product-days per day, frozen then sent with an
identifier per organization × meter × hour, counted once by the stand-in even when a worker died between
sending and recording it; `GET /api/v1/billing/usage` shows the numbers the meters got."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from app.db.engine import create_engine, create_sessionmaker, session_scope
from app.domain.apikeys.services import api_call_counter
from app.domain.apikeys.usage import period_of, usage_key
from app.domain.billing.services import METERS, UsageReporter
from app.lib.clock import utcnow
from tests.fakes import sync_and_evaluate
from tests.sync_support import connect, make_seller

from .conftest import World


def counted(events: list[dict[str, Any]], event_name: str) -> float:
    return sum(float(e["value"]) for e in events if e["event_name"] == event_name and e["counted"])


async def test_usage_is_reported_once_and_shown_as_reported(world: World, redis: Any, marketplace_sandbox: str) -> None:
    owner = await world.register("Metered shop")
    tenant = owner["tenant"]["id"]
    done = await world.checkout(owner, "pro")
    await world.settle()
    # Synced products yesterday (a real sync, dated back a day), and API calls this month.
    seller = make_seller(marketplace_sandbox, products=12, warehouses=1, seed=606)
    conn = await connect(world.api, owner["headers"], seller)
    await sync_and_evaluate(world.settings, tenant, conn["id"])
    await world.sql("UPDATE product_usage SET day = day - 1 WHERE tenant_id = $1", uuid.UUID(tenant))
    now = utcnow()
    await redis.set(usage_key(tenant, period_of(now - timedelta(hours=1))), 37)

    engine = create_engine(world.settings, pool_size=2, max_overflow=0)
    sessionmaker = create_sessionmaker(engine)
    reporter = UsageReporter(sessionmaker, api_call_counter(redis), world.stripe)
    try:
        await reporter.ensure_meters()
        # A worker froze the hour's values and sent them, then died before recording that it had.
        async with session_scope(sessionmaker, uuid.UUID(tenant)) as s:
            assert await reporter.freeze(s, uuid.UUID(tenant), done["customer"], now) == 2
        rows = await world.sql(
            "SELECT meter, value, identifier, hour FROM usage_reports WHERE tenant_id = $1 ORDER BY meter",
            uuid.UUID(tenant),
        )
        assert [(r["meter"], r["value"]) for r in rows] == [("api_calls", 37), ("product_days", 12)]
        api_row = rows[0]
        assert api_row["identifier"] == f"{tenant}:api_calls:{api_row['hour']:%Y-%m-%dT%H}"
        await world.stripe.report_meter_event(
            event_name=METERS["api_calls"][0],
            customer_id=done["customer"],
            value=37,
            identifier=api_row["identifier"],
            timestamp=int(api_row["hour"].timestamp()),
        )
        # The next run sends what is unsent — the same identifiers — and records it (other organizations in
        # this database with a Stripe customer are reported too: only empty hours, settled without a send).
        first = await reporter.run(now)
        assert (first["sent"], first["failed"]) == (2, 0)
        unsent = await world.sql(
            "SELECT count(*) AS n FROM usage_reports WHERE tenant_id = $1 AND reported_at IS NULL", uuid.UUID(tenant)
        )
        assert unsent[0]["n"] == 0
        again = await reporter.run(now)
        assert (again["sent"], again["failed"]) == (0, 0)  # nothing twice
    finally:
        await engine.dispose()

    meter_events = await world.standin.meter_events()
    mine = [e for e in meter_events if e["identifier"] == api_row["identifier"]]
    # Sent twice: Stripe replays the second request (same idempotency key) or drops it as a duplicate
    # identifier — either way the usage counts once.
    assert mine and sum(e["counted"] for e in mine) == 1
    assert counted(meter_events, METERS["api_calls"][0]) == 37
    assert counted(meter_events, METERS["product_days"][0]) == 12

    usage = (await world.api.get("/api/v1/billing/usage", headers=owner["headers"])).json()
    by_meter = {m["meter"]: m for m in usage["meters"]}
    assert usage["stripe_customer_id"] == done["customer"] and usage["period"] == period_of(now)
    assert (by_meter["api_calls"]["reported"], by_meter["api_calls"]["pending"]) == (37, 0)
    assert by_meter["api_calls"]["accruing"] == 0
    assert by_meter["product_days"]["reported"] == 12 or (now - timedelta(days=1)).month != now.month
    # The same figures as Stripe's own aggregation of the meter.
    meters = {m.event_name: m for m in [await world.stripe.ensure_meter(n, d) for n, d in METERS.values()]}
    start = int((now - timedelta(days=2)).replace(minute=0, second=0, microsecond=0).timestamp())
    end = int((now + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0).timestamp())
    summary = await world.stripe.meter_event_summaries(
        meters[METERS["api_calls"][0]].id, customer_id=done["customer"], start=start, end=end
    )
    assert sum(s.aggregated_value for s in summary) == by_meter["api_calls"]["reported"]
    # More calls accrue until the next hour is reported.
    await redis.incrby(usage_key(tenant, period_of(now)), 5)
    usage = (await world.api.get("/api/v1/billing/usage", headers=owner["headers"])).json()
    assert {m["meter"]: m["accruing"] for m in usage["meters"]}["api_calls"] == 5
