"""Limits where they bite, as single calls other areas make: one more connection / webhook endpoint / member /
API key, a manual sync, the products a sync keeps, whether the fan-out schedules a connection, and the
read-only state that a trial's end or an ended subscription brings.

While billing is off every organization has the self-hosted plan and nothing is ever read-only.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import BillingAccount, Tenant
from app.domain.billing.plans import SELF_HOSTED, TRIAL, Plan, effective_plan, limit_of
from app.domain.billing.repositories import (
    BillingAccountRepository,
    ProductRanking,
    ProductUsageRepository,
    TenantRow,
    UsageCounts,
)
from app.domain.billing.services._errors import (
    PaymentRequiredError,
    plan_limit_error,
    sync_interval_error,
    upgrade_request,
)
from app.lib.clock import utcnow

log = structlog.get_logger(__name__)


def is_read_only(account: BillingAccount | None, now: datetime) -> bool:
    """Access has ended (trial over without a subscription, or the subscription ended): data is kept and
    readable, writes answer `payment_required`, syncs pause."""
    return account is not None and account.access_ends_at is not None and account.access_ends_at <= now


def payment_required(account: BillingAccount) -> PaymentRequiredError:
    if account.stripe_subscription_id is None:
        why = "The organization's trial has ended"
    else:
        why = "The organization's subscription has ended"
    return PaymentRequiredError(
        f"{why}: its data is kept and can be read, but changes and syncs are paused until it subscribes "
        "(POST /api/v1/billing/checkout)."
    )


async def tenant_plan(session: AsyncSession, tenant_id: uuid.UUID, *, billing_enabled: bool) -> Plan:
    """The plan whose limits apply to the organization now."""
    if not billing_enabled:
        return effective_plan(SELF_HOSTED, billing_enabled=False)
    found = await TenantRow(session, tenant_id).plan_and_name()
    return effective_plan(found[0] if found else SELF_HOSTED, billing_enabled=True)


async def ensure_within_limit(
    session: AsyncSession, tenant_id: uuid.UUID, limit: str, current: int, *, billing_enabled: bool
) -> None:
    """Refuse one more of ``limit`` (`connections`, `webhook_endpoints`, `members`, `api_keys`) when the
    organization already holds ``current`` and its plan allows no more: a 403 `plan-limit` problem."""
    plan = await tenant_plan(session, tenant_id, billing_enabled=billing_enabled)
    if current >= limit_of(plan, limit):
        raise plan_limit_error(plan, limit, current)


async def ensure_writable(session: AsyncSession, tenant_id: uuid.UUID, *, billing_enabled: bool) -> None:
    """Refuse a write while the organization is read-only (402 `payment_required`); the API's guard asks."""
    if not billing_enabled:
        return
    account = await BillingAccountRepository(session, tenant_id).find()
    if account is not None and is_read_only(account, utcnow()):
        raise payment_required(account)


async def check_manual_sync(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    connection_id: uuid.UUID,
    last_manual_at: datetime | None,
    *,
    billing_enabled: bool,
    now: datetime | None = None,
) -> None:
    """May this connection be synced by hand now? Read-only organizations (402), connections past the
    plan's connection limit (403 `plan-limit`) and a manual sync sooner than the plan's interval after the
    last one (429 `sync-interval`, with when the next is allowed) are refused."""
    if not billing_enabled:
        return
    now = now or utcnow()
    account = await BillingAccountRepository(session, tenant_id).find()
    if account is not None and is_read_only(account, now):
        raise payment_required(account)
    plan = await tenant_plan(session, tenant_id, billing_enabled=True)
    counts = UsageCounts(session, tenant_id)
    rank = await counts.connection_rank(connection_id)
    if rank > plan.max_connections:
        error = plan_limit_error(plan, "connections", len(await counts.connections_by_age()))
        error.detail = (
            f"The {plan.name} plan syncs the organization's first {plan.max_connections} connection(s); this one "
            f"is number {rank}, so it is kept but not synced. Upgrade ({upgrade_request(plan)}) or remove a "
            "connection."
        )
        raise error
    minutes = plan.manual_sync_interval_minutes
    if minutes and last_manual_at is not None:
        next_at = last_manual_at + timedelta(minutes=minutes)
        if next_at > now:
            raise sync_interval_error(plan, next_at, max(1, math.ceil((next_at - now).total_seconds())))


def schedulable(plan_code: str, read_only: bool, rank: int, *, billing_enabled: bool) -> bool:
    """Does the fan-out schedule this connection? Not while its organization is read-only, nor past the
    plan's connection limit (the oldest connections keep syncing; the rest keep their data)."""
    if not billing_enabled:
        return True
    return not read_only and rank <= effective_plan(plan_code, billing_enabled=True).max_connections


def start_trial(tenant: Tenant, session: AsyncSession, *, billing_enabled: bool, trial_days: int) -> None:
    """A new organization's trial (billing on): the trial plan, and its account, ending ``trial_days`` on.

    Called by sign-up in its own transaction, after the tenant row is added. No card and no Stripe call.
    """
    if not billing_enabled:
        return
    now = utcnow()
    ends = now + timedelta(days=trial_days)
    tenant.plan = TRIAL
    session.add(
        BillingAccount(
            tenant_id=tenant.id,
            status="trialing",
            plan=TRIAL,
            trial_ends_at=ends,
            access_ends_at=ends,
            cancel_at_period_end=False,
        )
    )


@dataclass(frozen=True, slots=True)
class ProductAllowance:
    """What a sync of one connection may keep: ``kept``, the marketplace ids of the connection's products it
    syncs (None: everything), how many of the snapshot's were ``left_out``, and why."""

    kept: frozenset[str] | None
    left_out: int = 0
    limit: int = 0
    plan: str = SELF_HOSTED
    reason: str | None = None

    def report(self) -> dict[str, object]:
        """What the sync run records (``counts["product_limit"]``) when products were left out."""
        return {"plan": self.plan, "limit": self.limit, "left_out": self.left_out, "reason": self.reason}


def _by_marketplace_id(external_id: str) -> tuple[int, str]:
    # Marketplace ids are numbers written as text: order them as numbers ("99" before "100").
    return (len(external_id), external_id)


async def product_allowance(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    connection_id: uuid.UUID,
    candidates: Iterable[str],
    *,
    billing_enabled: bool,
    now: datetime | None = None,
) -> ProductAllowance:
    """The products (marketplace ids) a sync of this connection stores, under the plan's product limit.

    The limit is the organization's: products it already tracks come first (earliest tracked first), then
    new ones by marketplace id. A tracked product past the limit (after a downgrade) keeps its data but is
    no longer synced. Also records the day's synced products (the product-days meter) in the caller's
    transaction.
    """
    if not billing_enabled:
        # Self-hosting: nothing is metered and the self-hosted plan's million products never binds a sync;
        # the sync pays for no query here.
        return ProductAllowance(None)
    now = now or utcnow()
    plan = await tenant_plan(session, tenant_id, billing_enabled=True)
    wanted = set(candidates)
    ranking = ProductRanking(session, tenant_id)
    total, here = await ranking.totals(connection_id)
    tracked = await ranking.tracked_among(connection_id, sorted(wanted)) if wanted else set()
    new = sorted(wanted - tracked, key=_by_marketplace_id)
    cap = plan.max_products
    if total + len(new) <= cap:
        allowance = ProductAllowance(None, 0, cap, plan.code)
        synced = here + len(new)
    else:
        first = await ranking.first_tracked(cap)
        kept_here = {ext for conn, ext in first if conn == connection_id}
        room = max(0, cap - len(first))
        admitted = new[:room]
        kept = frozenset(kept_here | set(admitted))
        left_out = len(wanted - kept)
        reason = (
            f"The {plan.name} plan syncs {cap} products; {left_out} of this connection's were left out "
            "(products already tracked come first, then new ones by marketplace id). Their data is kept. "
            f"Upgrade for more ({upgrade_request(plan)})."
        )
        allowance = ProductAllowance(kept, left_out, cap, plan.code, reason)
        synced = len(kept_here) + len(admitted)
        log.info("billing.products_left_out", connection_id=str(connection_id), left_out=left_out, limit=cap)
    await ProductUsageRepository(session, tenant_id).record(
        connection_id, now.date(), synced, allowance.left_out, cap, plan.code, now
    )
    return allowance
