"""arq jobs of billing: process one stored Stripe event; the hourly usage report (and its sweep)."""

from __future__ import annotations

import structlog

from app.domain.apikeys.services import api_call_counter
from app.domain.billing.services import StripeEventProcessor, UsageReporter
from app.domain.jobcontext import JobContext
from app.lib.clock import utcnow

log = structlog.get_logger(__name__)


async def process_stripe_event(ctx: JobContext, *, event_id: str) -> str:
    """Apply one Stripe event (re-reading the subscription); a repeat finds it processed and does nothing."""
    processor = StripeEventProcessor(ctx["sessionmaker"], ctx["redis"], ctx.get("stripe"))
    return await processor.process(event_id)


async def billing_usage_cron(ctx: JobContext) -> dict[str, int]:
    """Cron, hourly: report usage to Stripe's meters (frozen, then sent once) and re-enqueue Stripe events a
    job gave up on."""
    stripe = ctx.get("stripe")
    if stripe is None:
        return {}
    swept = await StripeEventProcessor(ctx["sessionmaker"], ctx["redis"], stripe).sweep(utcnow())
    reporter = UsageReporter(ctx["sessionmaker"], api_call_counter(ctx["redis"]), stripe)
    totals = await reporter.run(utcnow())
    return {**totals, "events_requeued": swept}
