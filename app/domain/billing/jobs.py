"""arq jobs of billing: process one stored Stripe event; the hourly usage report (and its sweep)."""

from __future__ import annotations

import structlog
from arq import Retry

from app.domain.apikeys.services import api_call_counter
from app.domain.billing.services import StripeEventProcessor, UsageReporter
from app.domain.jobcontext import JobContext
from app.integrations.stripe import StripeError
from app.lib.clock import utcnow

log = structlog.get_logger(__name__)


async def process_stripe_event(ctx: JobContext, *, event_id: str) -> str:
    """Apply one Stripe event (re-reading the subscription); a repeat finds it processed and does nothing.
    Stripe unreachable: the job runs again later (the event stays unprocessed; the hourly sweep is the net)."""
    processor = StripeEventProcessor(ctx["sessionmaker"], ctx["redis"], ctx.get("stripe"))
    try:
        return await processor.process(event_id)
    except StripeError as exc:
        if not exc.transient:
            raise
        tries = int(ctx.get("job_try", 1))
        log.warning("billing.event_retry", event_id=event_id, error=type(exc).__name__, tries=tries)
        raise Retry(defer=min(600, 5 * 2**tries)) from exc


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
