"""Usage metering: API calls and synced product-days, reported to Stripe's meters by a cron, once.

Each run first *freezes* what is due — per organization, meter and hour, a ``usage_reports`` row whose
value never changes again — and commits; then sends every unsent row as a meter event whose
``identifier`` is `<organization>:<meter>:<hour>` (also its idempotency key) and marks it sent. A worker
killed between the send and the mark re-sends the same identifier on the next run, which Stripe counts
once; a value is never recomputed after it was frozen, so nothing is counted twice or differently.

- `api_calls`: per complete hour, the organization's monthly API-call counter (the one the quota enforces)
  minus what was already frozen for that month; calls made after an hour ends but before the run counts
  are in that hour's figure, and the next hour's figure starts after them.
- `product_days`: per complete day (filed under the day's first hour), the products the day's syncs
  kept, summed over connections (``product_usage``, written by the sync's write stage).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import session_scope
from app.db.models import UsageReport
from app.domain.billing import schemas as out
from app.domain.billing.plans import purchasable_plans
from app.domain.billing.repositories import (
    BillingAccountRepository,
    ProductUsageRepository,
    UsageReportRepository,
    billing_customers,
)
from app.integrations.stripe import CatalogEntry, CatalogResult, Meter, StripeError, StripeGateway
from app.lib.clock import utcnow
from app.lib.ids import uuid7

log = structlog.get_logger(__name__)

# meter → (Stripe event name, display name)
METERS: dict[str, tuple[str, str]] = {
    "api_calls": ("stock_tracker_api_calls", "Stock Tracker API calls"),
    "product_days": ("stock_tracker_product_days", "Stock Tracker synced product-days"),
}
# (organization, moment) → (period `YYYY-MM`, API calls counted that month): the quota's own counter, handed
# in by the caller (``app.domain.apikeys.services.api_call_counter``).
ApiCallCounter = Callable[[uuid.UUID, datetime], Awaitable[tuple[str, int]]]
HOUR = timedelta(hours=1)
BACKFILL = timedelta(hours=48)  # a worker that was down this long reports what it missed, no further
SEND_BATCH = 500
SEND_CONCURRENCY = 8


async def sync_catalog(stripe: StripeGateway) -> tuple[list[CatalogResult], list[Meter]]:
    """`stock-tracker billing sync-catalog`: a product and a monthly price (found by lookup key
    `stock_tracker_<plan>_monthly`) for every plan sold, and the usage meters. Safe to run again."""
    entries = [CatalogEntry(p.code, p.name, p.price_usd_cents) for p in purchasable_plans()]
    results = await stripe.sync_catalog(entries)
    meters = [await stripe.ensure_meter(event_name, display) for event_name, display in METERS.values()]
    return results, meters


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def month_bounds(at: datetime) -> tuple[datetime, datetime]:
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, (start + timedelta(days=32)).replace(day=1)


def identifier(tenant_id: uuid.UUID, meter: str, hour: datetime) -> str:
    return f"{tenant_id}:{meter}:{hour:%Y-%m-%dT%H}"


class UsageReporter:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        api_calls: ApiCallCounter,
        stripe: StripeGateway | None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.api_calls = api_calls
        self.stripe = stripe
        self._meters_ready = False

    async def run(self, now: datetime | None = None) -> dict[str, int]:
        """Freeze what is due for every organization with a Stripe customer, then send what is unsent."""
        if self.stripe is None:
            return {"frozen": 0, "sent": 0, "failed": 0}
        now = now or utcnow()
        await self.ensure_meters()
        async with session_scope(self.sessionmaker) as s:
            customers = await billing_customers(s)
        totals = {"frozen": 0, "sent": 0, "failed": 0}
        for tenant_id, customer_id in customers:
            async with session_scope(self.sessionmaker, tenant_id) as s:
                totals["frozen"] += await self.freeze(s, tenant_id, customer_id, now)
            sent, failed = await self.send(tenant_id)
            totals["sent"] += sent
            totals["failed"] += failed
        if totals["frozen"] or totals["sent"] or totals["failed"]:
            log.info("billing.usage_reported", **totals)
        return totals

    async def ensure_meters(self) -> None:
        if self._meters_ready or self.stripe is None:
            return
        for event_name, display in METERS.values():
            await self.stripe.ensure_meter(event_name, display)
        self._meters_ready = True

    async def freeze(self, s: AsyncSession, tenant_id: uuid.UUID, customer_id: str, now: datetime) -> int:
        """Write the due hours' values (once: an hour already frozen keeps its value)."""
        reports = UsageReportRepository(s, tenant_id)
        current = hour_of(now)
        rows: list[dict[str, object]] = []
        # API calls: every complete hour since the last one frozen.
        last = await reports.last_hour("api_calls")
        start = max(last + HOUR if last else current - HOUR, current - BACKFILL)
        taken: dict[str, int] = defaultdict(int)  # per month: what this run already froze
        hour = start
        while hour < current:
            period, counted = await self.api_calls(tenant_id, hour)
            month_start, month_end = month_bounds(hour)
            before = await reports.total("api_calls", month_start, month_end)
            value = max(0, counted - before - taken[period])
            taken[period] += value
            rows.append(self._row(tenant_id, customer_id, "api_calls", hour, value, now))
            hour += HOUR
        # Product-days: every complete day since the last one frozen.
        last_day = await reports.last_hour("product_days")
        today = current.date()
        day = max(
            last_day.date() + timedelta(days=1) if last_day else today - timedelta(days=1), today - timedelta(days=2)
        )
        if day < today:
            per_day = await ProductUsageRepository(s, tenant_id).product_days(day, today - timedelta(days=1))
            while day < today:
                start_of_day = datetime(day.year, day.month, day.day, tzinfo=UTC)
                rows.append(self._row(tenant_id, customer_id, "product_days", start_of_day, per_day.get(day, 0), now))
                day += timedelta(days=1)
        return await reports.freeze(rows)

    @staticmethod
    def _row(
        tenant_id: uuid.UUID, customer_id: str, meter: str, hour: datetime, value: int, now: datetime
    ) -> dict[str, object]:
        return {
            "id": uuid7(),
            "meter": meter,
            "hour": hour,
            "value": value,
            "identifier": identifier(tenant_id, meter, hour),
            "stripe_customer_id": customer_id,
            # Nothing to send for an empty hour: it is settled as it is frozen.
            "reported_at": now if value == 0 else None,
        }

    async def send(self, tenant_id: uuid.UUID) -> tuple[int, int]:
        """Send the organization's unsent reports as meter events; returns (sent, failed)."""
        stripe = self.stripe
        assert stripe is not None
        gate = asyncio.Semaphore(SEND_CONCURRENCY)
        sent = failed = 0
        async with session_scope(self.sessionmaker, tenant_id) as s:
            pending = await UsageReportRepository(s, tenant_id).pending(SEND_BATCH)

            async def one(report: UsageReport) -> None:
                nonlocal sent, failed
                async with gate:
                    try:
                        await stripe.report_meter_event(
                            event_name=METERS[report.meter][0],
                            customer_id=report.stripe_customer_id,
                            value=report.value,
                            identifier=report.identifier,
                            timestamp=int(report.hour.timestamp()),
                        )
                    except StripeError as exc:
                        report.attempts += 1
                        report.last_error = f"{type(exc).__name__}: {exc.message}"[:500]
                        failed += 1
                        return
                report.reported_at = utcnow()
                sent += 1

            await asyncio.gather(*(one(r) for r in pending))
        return sent, failed


async def metered_usage(
    session: AsyncSession, tenant_id: uuid.UUID, api_calls: ApiCallCounter, now: datetime
) -> out.MeteredUsage:
    """This month's meters: what was sent to Stripe, what is frozen and about to be, what is accruing."""
    start, end = month_bounds(now)
    account = await BillingAccountRepository(session, tenant_id).find()
    rows = await UsageReportRepository(session, tenant_id).in_period(start, end)
    meters: list[out.MeterUsage] = []
    for meter, (event_name, _) in METERS.items():
        mine = [r for r in rows if r.meter == meter]
        by_day: dict[date, int] = defaultdict(int)
        for r in mine:
            if r.value:
                by_day[r.hour.date()] += r.value
        frozen = sum(r.value for r in mine)
        if meter == "api_calls":
            try:
                accruing = max(0, (await api_calls(tenant_id, now))[1] - frozen)
            except Exception as exc:  # Redis unreachable: what was reported still stands
                log.warning("billing.usage_unavailable", error=type(exc).__name__)
                accruing = 0
        else:
            last = max((r.hour.date() for r in mine), default=start.date() - timedelta(days=1))
            later = await ProductUsageRepository(session, tenant_id).product_days(last + timedelta(days=1), now.date())
            accruing = sum(later.values())
        meters.append(
            out.MeterUsage(
                meter=meter,
                event_name=event_name,
                reported=sum(r.value for r in mine if r.reported_at is not None),
                pending=sum(r.value for r in mine if r.reported_at is None),
                accruing=accruing,
                days=[out.MeterDay(date=d, value=v) for d, v in sorted(by_day.items())],
            )
        )
    return out.MeteredUsage(
        period=f"{now.year:04d}-{now.month:02d}",
        stripe_customer_id=account.stripe_customer_id if account else None,
        meters=meters,
    )
