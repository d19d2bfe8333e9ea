"""The organization's subscription as Stripe has it, applied to our records.

Whoever changes the state — an owner's request, or a job processing a Stripe event — locks the
organization's ``billing_accounts`` row first, then reads Stripe, then applies what it read. Reads made
under the lock are therefore in order, so an older event processed late applies the same (current) state
instead of rolling the plan back, and fifty copies of one event change it once. Every change of plan or
status is recorded (from → to, cause, who asked, the Stripe event) and published: `billing.plan_changed`
(or, into `past_due`, `billing.payment_failed` from the invoice event) through the outbox.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import BillingAccount, PlanChange
from app.domain.billing.plans import SELF_HOSTED, TRIAL, get_plan
from app.domain.billing.repositories import BillingAccountRepository, PlanChangeRepository, TenantRow
from app.domain.events.services import record_event
from app.integrations.stripe import StripeGateway, StripeNotFound, Subscription, SubscriptionSchedule
from app.lib.clock import utcnow
from app.lib.ids import uuid7

log = structlog.get_logger(__name__)

PLAN_CHANGED = "billing.plan_changed"
PAYMENT_FAILED = "billing.payment_failed"
ENDED = frozenset({"canceled", "incomplete_expired"})
# Statuses whose organization is read-only: ended, or Stripe gave up collecting (unpaid), or a trial ended
# without a payment method (paused).
NO_ACCESS = frozenset({*ENDED, "unpaid", "paused"})
LATE = frozenset({"past_due", "unpaid"})


def ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


@dataclass(frozen=True, slots=True)
class Observed:
    """A subscription as read from Stripe just now."""

    subscription_id: str
    customer_id: str
    plan: str | None
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    pending_plan: str | None
    pending_at: datetime | None
    ended_reason: str | None = None


def current_subscription(subscriptions: list[Subscription]) -> Subscription | None:
    """The customer's subscription that matters: the newest one still alive, else the newest ended one."""
    alive = [s for s in subscriptions if s.status not in ENDED]
    pool = alive or subscriptions
    return max(pool, key=lambda s: (s.created, s.id)) if pool else None


async def _plan_of_price(stripe: StripeGateway, sub: Subscription, price_id: str) -> str | None:
    for item in sub.item_list:
        if item.price.id == price_id:
            return item.price.plan_code
    try:
        return (await stripe.get_price(price_id)).plan_code
    except StripeNotFound:
        return None


async def observe(stripe: StripeGateway, sub: Subscription) -> Observed:
    """The subscription with its pending change (a schedule's next phase, read from Stripe)."""
    pending_plan = pending_at = None
    if sub.schedule:
        schedule: SubscriptionSchedule | None = await stripe.get_schedule(sub.schedule)
        if schedule is not None and schedule.status in ("active", "not_started"):
            # The phase after the current period (never the wall clock: Stripe's own clock decides).
            later = sorted(
                (p for p in schedule.phases if p.start_date > sub.current_period_start), key=lambda p: p.start_date
            )
            if later and later[0].items:
                plans = [await _plan_of_price(stripe, sub, item.price) for item in later[0].items]
                pending_plan = next((p for p in plans if p), None)
                pending_at = ts(later[0].start_date)
    reason = sub.cancellation_details.reason if sub.cancellation_details else None
    return Observed(
        subscription_id=sub.id,
        customer_id=sub.customer,
        plan=sub.plan_code,
        status=sub.status,
        current_period_end=ts(sub.current_period_end) if sub.items.data else None,
        cancel_at_period_end=bool(sub.cancel_at_period_end or sub.cancel_at),
        pending_plan=pending_plan if pending_plan != sub.plan_code else None,
        pending_at=pending_at if pending_plan not in (None, sub.plan_code) else None,
        ended_reason=reason,
    )


async def observe_customer(stripe: StripeGateway, customer_id: str) -> Observed | None:
    sub = current_subscription(await stripe.list_subscriptions(customer_id))
    return await observe(stripe, sub) if sub is not None else None


def public_status(account: BillingAccount | None, *, billing_enabled: bool, now: datetime) -> str:
    """`trialing`, `active`, `past_due`, `canceled` or `self_hosted` (the API's status)."""
    if not billing_enabled:
        return "self_hosted"
    if account is None:
        return "active"  # an organization from before billing was switched on keeps its plan
    if account.stripe_subscription_id is None:
        ended = account.access_ends_at is not None and account.access_ends_at <= now
        return "canceled" if ended else "trialing"
    if account.status in ("trialing", "active"):
        return account.status
    if account.status in (*LATE, "incomplete"):
        return "past_due"
    return "canceled"


def _access_ends(account: BillingAccount, status: str, now: datetime) -> datetime | None:
    if status in NO_ACCESS:
        # Ended: read-only from now (or from when we first saw it) — never from Stripe's clock.
        return account.access_ends_at if account.access_ends_at and account.access_ends_at <= now else now
    if status == "incomplete":  # the first payment is still pending: whatever access the trial gave
        return account.trial_ends_at or now
    return None


def _cause(before: BillingAccount, old_plan: str, old_status: str, seen: Observed, had_subscription: bool) -> str:
    new_plan, new_status = seen.plan or old_plan, seen.status
    if not had_subscription and new_status not in NO_ACCESS:
        return "checkout"
    if new_status in ENDED and old_status not in ENDED:
        return "payment_failed" if seen.ended_reason == "payment_failed" else "canceled"
    if old_status in ENDED and new_status not in ENDED:
        return "resubscribed"
    if new_status in LATE and old_status not in LATE:
        return "payment_failed"
    if old_status in LATE and new_status == "active":
        return "payment_recovered"
    if new_status == "paused":
        return "trial_ended"
    if new_plan != old_plan:
        if before.pending_plan == new_plan:
            return "scheduled_change"
        up = get_plan(new_plan).price_usd_cents > get_plan(old_plan).price_usd_cents
        return "upgrade" if up else "downgrade"
    return "stripe_update"


async def apply(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    account: BillingAccount,
    seen: Observed,
    *,
    cause: str | None = None,
    actor: uuid.UUID | None = None,
    stripe_event_id: str | None = None,
    now: datetime | None = None,
) -> PlanChange | None:
    """Make our records say what Stripe says (``account`` is locked by the caller). Returns the change
    recorded, if the plan or the status changed."""
    now = now or utcnow()
    old_plan, old_status = account.plan, account.status
    had_subscription = account.stripe_subscription_id is not None
    older = account.stripe_subscription_id not in (None, seen.subscription_id)
    if older and seen.status in ENDED and account.status not in ENDED:
        # A late event about an older, ended subscription while a newer one is alive: nothing to apply.
        log.info("billing.stale_subscription_ignored", subscription=seen.subscription_id)
        return None
    new_plan = seen.plan or old_plan
    if seen.plan is None:
        log.warning("billing.unknown_price", subscription=seen.subscription_id)
    inferred = _cause(account, old_plan, old_status, seen, had_subscription)
    account.stripe_customer_id = account.stripe_customer_id or seen.customer_id
    account.stripe_subscription_id = seen.subscription_id
    account.status = seen.status
    account.plan = new_plan
    account.current_period_end = seen.current_period_end
    account.cancel_at_period_end = seen.cancel_at_period_end and seen.status not in ENDED
    account.pending_plan = seen.pending_plan
    account.pending_plan_at = seen.pending_at
    account.access_ends_at = _access_ends(account, seen.status, now)
    account.synced_at = now
    tenant = TenantRow(session, tenant_id)
    current = await tenant.plan_and_name()
    if current is not None and current[0] != new_plan:
        await tenant.set_plan(new_plan)
    await session.flush()
    if (old_plan, old_status) == (new_plan, seen.status):
        return None
    change = PlanChangeRepository(session, tenant_id).add(
        PlanChange(
            id=uuid7(),
            from_plan=old_plan,
            to_plan=new_plan,
            from_status=old_status,
            to_status=seen.status,
            cause=cause or inferred,
            actor_user_id=actor,
            stripe_event_id=stripe_event_id,
            stripe_subscription_id=seen.subscription_id,
        )
    )
    await session.flush()
    log.info("billing.plan_changed", frm=old_plan, to=new_plan, status=seen.status, cause=change.cause)
    if seen.status not in LATE:  # into past_due: the invoice event publishes billing.payment_failed
        record_event(
            session,
            tenant_id,
            PLAN_CHANGED,
            {
                "plan_change_id": str(change.id),
                "from_plan": old_plan,
                "to_plan": new_plan,
                "from_status": old_status,
                "to_status": seen.status,
                "cause": change.cause,
                "read_only": account.access_ends_at is not None and account.access_ends_at <= now,
                "current_period_end": seen.current_period_end.isoformat() if seen.current_period_end else None,
            },
            key=f"{PLAN_CHANGED}:{change.id}",
        )
    return change


async def locked_account(session: AsyncSession, tenant_id: uuid.UUID, *, plan: str | None = None) -> BillingAccount:
    """The organization's account, locked for this transaction (created for an organization from before
    billing was switched on: it keeps its plan, with no trial)."""
    repo = BillingAccountRepository(session, tenant_id)
    found = await repo.find(for_update=True)
    if found is None:
        current = await TenantRow(session, tenant_id).plan_and_name()
        code = plan or (current[0] if current else SELF_HOSTED)
        await repo.insert_once(status="active" if code != TRIAL else "trialing", plan=code, cancel_at_period_end=False)
        found = await repo.find(for_update=True)
    assert found is not None
    return found
