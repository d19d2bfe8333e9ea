"""What an organization does with its subscription (`/api/v1/billing`): read it with its usage, check out,
open the Customer Portal, change plan, cancel, resume. Mutations are the owner's; each locks the account,
asks Stripe, and applies the subscription Stripe answers with (``_state.apply``), so the answer shows the
new state at once and the webhook that follows finds nothing left to change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.models import BillingAccount
from app.domain.billing import schemas as out
from app.domain.billing.plans import PLANS, SELF_HOSTED, Plan, effective_plan, get_plan, limit_of
from app.domain.billing.repositories import (
    BillingAccountRepository,
    PlanChangeRepository,
    ProductUsageRepository,
    TenantRow,
    UsageCounts,
    user_email,
)
from app.domain.billing.services._errors import (
    BillingConflictError,
    BillingDisabledError,
    BillingUnavailableError,
    UnknownPlanError,
)
from app.domain.billing.services._limits import is_read_only
from app.domain.billing.services._metering import ApiCallCounter, metered_usage
from app.domain.billing.services._state import ENDED, apply, locked_account, observe, public_status
from app.integrations.stripe import (
    StripeCardDeclined,
    StripeError,
    StripeGateway,
    StripeInvalidRequest,
    StripeNotFound,
    Subscription,
)
from app.lib.clock import utcnow
from app.lib.errors import FieldError
from app.lib.tokens import Principal

log = structlog.get_logger(__name__)
RECENT_CHANGES = 10


def plan_out(plan: Plan) -> out.Plan:
    return out.Plan(
        code=plan.code,
        name=plan.name,
        price_usd_cents=plan.price_usd_cents,
        currency="usd",
        interval="month",
        purchasable=plan.purchasable,
        webhooks=plan.webhooks,
        limits=out.PlanLimits(
            products=plan.max_products,
            connections=plan.max_connections,
            webhook_endpoints=limit_of(plan, "webhook_endpoints"),
            members=plan.max_members,
            api_keys=plan.max_api_keys,
            api_calls_per_month=plan.api_calls_per_month,
            sync_interval_minutes=plan.sync_interval_minutes,
            manual_sync_interval_minutes=plan.manual_sync_interval_minutes,
            history_retention_days=plan.history_retention_days,
        ),
    )


def plan_catalog(settings: Settings) -> out.PlanList:
    """The plans with prices and limits (while billing is off: the self-hosted plan alone)."""
    if not settings.billing_enabled:
        return out.PlanList(billing_enabled=False, items=[plan_out(PLANS[SELF_HOSTED])])
    plans = sorted((p for p in PLANS.values() if p.code != SELF_HOSTED), key=lambda p: p.price_usd_cents)
    return out.PlanList(billing_enabled=True, items=[plan_out(p) for p in plans])


class PlanCatalog:
    """`GET /billing/plans`: no session, no tenant — the catalogue as this deployment sells it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def list(self) -> out.PlanList:
        return plan_catalog(self.settings)


def return_url(settings: Settings) -> str:
    base = settings.billing_return_url or settings.public_url or f"http://{settings.api_host}:{settings.api_port}"
    return base.rstrip("/") + ("" if settings.billing_return_url else "/")


class BillingService:
    def __init__(
        self,
        session: AsyncSession,
        principal: Principal,
        settings: Settings,
        stripe: StripeGateway | None,
        api_calls: ApiCallCounter,
    ) -> None:
        self.session = session
        self.principal = principal
        self.tenant_id = principal.tenant_id
        self.settings = settings
        self.stripe = stripe
        self.api_calls = api_calls

    # ---- reading ---------------------------------------------------------------------------------------

    async def overview(self) -> out.Subscription:
        """Plan, status, period, pending change, usage against every limit, and what the limits hold back."""
        enabled = self.settings.billing_enabled
        now = utcnow()
        account = await BillingAccountRepository(self.session, self.tenant_id).find() if enabled else None
        found = await TenantRow(self.session, self.tenant_id).plan_and_name()
        plan = effective_plan(found[0] if found else SELF_HOSTED, billing_enabled=enabled)
        counts = await UsageCounts(self.session, self.tenant_id).all()
        left_out = await ProductUsageRepository(self.session, self.tenant_id).latest_left_out()
        try:
            period, calls = await self.api_calls(self.tenant_id, now)
        except Exception as exc:  # Redis unreachable: the rest of the answer still holds
            log.warning("billing.usage_unavailable", error=type(exc).__name__)
            period, calls = f"{now.year:04d}-{now.month:02d}", 0
        usage = out.Usage(
            products=out.ProductUsage(used=counts["products"], limit=plan.max_products, left_out=left_out),
            connections=out.LimitUsage(used=counts["connections"], limit=plan.max_connections),
            webhook_endpoints=out.LimitUsage(
                used=counts["webhook_endpoints"], limit=limit_of(plan, "webhook_endpoints")
            ),
            members=out.LimitUsage(used=counts["members"], limit=plan.max_members),
            api_keys=out.LimitUsage(used=counts["api_keys"], limit=plan.max_api_keys),
            api_calls=out.ApiCallUsage(used=calls, limit=plan.api_calls_per_month, period=period),
            sync_interval_minutes=plan.sync_interval_minutes,
            manual_sync_interval_minutes=plan.manual_sync_interval_minutes,
        )
        read_only = is_read_only(account, now) if enabled else False
        changes = await PlanChangeRepository(self.session, self.tenant_id).recent(RECENT_CHANGES) if enabled else []
        return out.Subscription(
            billing_enabled=enabled,
            plan=plan.code,
            plan_name=plan.name,
            status=public_status(account, billing_enabled=enabled, now=now),  # type: ignore[arg-type]
            read_only=read_only,
            trial_ends_at=account.trial_ends_at if account and not account.stripe_subscription_id else None,
            current_period_end=account.current_period_end if account else None,
            cancel_at_period_end=bool(account and account.cancel_at_period_end),
            pending_change=(
                out.PendingChange(plan=account.pending_plan, effective_at=account.pending_plan_at)
                if account is not None and account.pending_plan
                else None
            ),
            usage=usage,
            notices=self._notices(plan, usage, account, read_only),
            recent_changes=[
                out.PlanChangeRecord(
                    from_plan=c.from_plan,
                    to_plan=c.to_plan,
                    from_status=c.from_status,
                    to_status=c.to_status,
                    cause=c.cause,
                    actor_user_id=str(c.actor_user_id) if c.actor_user_id else None,
                    stripe_event_id=c.stripe_event_id,
                    at=c.created_at,
                )
                for c in changes
            ],
        )

    @staticmethod
    def _notices(plan: Plan, usage: out.Usage, account: BillingAccount | None, read_only: bool) -> list[str]:
        """What the plan holds back right now, in words (a downgrade never deletes: it stops and says so)."""
        notes: list[str] = []
        if read_only:
            notes.append(
                "The organization is read-only: its data is kept and can be read, but changes and syncs are "
                "paused until it subscribes (POST /api/v1/billing/checkout)."
            )
        if usage.products.left_out:
            notes.append(
                f"{usage.products.left_out} product(s) were left out of the latest syncs: the {plan.name} plan "
                f"syncs {plan.max_products}. Their data is kept; upgrade to sync them."
            )
        if usage.connections.used > usage.connections.limit:
            extra = usage.connections.used - usage.connections.limit
            notes.append(
                f"{extra} connection(s) are over the {plan.name} plan's limit of {usage.connections.limit} and are "
                "not synced (the oldest ones are); their data is kept."
            )
        for name, limit in (
            ("webhook endpoints", usage.webhook_endpoints),
            ("members", usage.members),
            ("API keys", usage.api_keys),
        ):
            if limit.used > limit.limit:
                notes.append(
                    f"The organization has {limit.used} {name}, more than the {plan.name} plan's {limit.limit}: "
                    "nothing is removed, but no new ones can be added."
                )
        if account is not None and account.pending_plan:
            when = account.pending_plan_at.date().isoformat() if account.pending_plan_at else "the period's end"
            notes.append(f"The plan changes to {get_plan(account.pending_plan).name} on {when}.")
        return notes

    # ---- changing (owner only; billing on) -------------------------------------------------------------

    def _gateway(self) -> StripeGateway:
        if not self.settings.billing_enabled or self.stripe is None:
            raise BillingDisabledError(
                "Billing is off on this deployment (no Stripe key): every organization has the self-hosted plan."
            )
        return self.stripe

    @staticmethod
    def _purchasable(code: str) -> Plan:
        plan = PLANS.get(code)
        if plan is None or not plan.purchasable:
            choices = ", ".join(p.code for p in PLANS.values() if p.purchasable)
            raise UnknownPlanError(
                f"No plan {code!r} can be bought; choose one of {choices}.",
                errors=[FieldError(field="plan", message=f"expected one of {choices}")],
            )
        return plan

    @asynccontextmanager
    async def _stripe_calls(self) -> AsyncIterator[None]:
        """Stripe's refusals as problems: unreachable → 503, refused state changes → 409."""
        try:
            yield
        except StripeCardDeclined as exc:
            raise BillingConflictError(f"The card was declined: {exc.message}") from None
        except StripeInvalidRequest as exc:
            raise BillingConflictError(exc.message) from None
        except StripeNotFound as exc:
            log.warning("billing.stripe_not_found", error=exc.message)
            raise BillingUnavailableError(
                "A billing object is missing in Stripe (has `stock-tracker billing sync-catalog` run?)."
            ) from None
        except StripeError as exc:
            log.warning("billing.stripe_failed", error=type(exc).__name__, code=exc.code, status=exc.status)
            raise BillingUnavailableError(
                "Stripe could not be reached; try again in a minute.", headers={"Retry-After": "30"}
            ) from None

    async def checkout(self, plan_code: str) -> str:
        """A Checkout page for ``plan_code`` (one Stripe customer per organization, reused)."""
        stripe = self._gateway()
        plan = self._purchasable(plan_code)
        account = await locked_account(self.session, self.tenant_id)
        if account.stripe_subscription_id and account.status not in ENDED:
            raise BillingConflictError(
                "The organization already has a subscription: change its plan (POST /api/v1/billing/change) or "
                "manage it in the portal (POST /api/v1/billing/portal)."
            )
        found = await TenantRow(self.session, self.tenant_id).plan_and_name()
        email = await user_email(self.session, self.principal.user_id) if self.principal.user_id else None
        back = return_url(self.settings)
        async with self._stripe_calls():
            customer = await stripe.find_or_create_customer(
                str(self.tenant_id),
                customer_id=account.stripe_customer_id,
                email=email,
                name=found[1] if found else None,
            )
            account.stripe_customer_id = customer.id
            await self.session.flush()
            price = await stripe.price_for_plan(plan.code)
            session = await stripe.create_checkout_session(
                tenant_id=str(self.tenant_id),
                customer_id=customer.id,
                price_id=price.id,
                success_url=f"{back}?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
                cancel_url=f"{back}?checkout=canceled",
                metadata={"plan": plan.code},
            )
        if not session.url:
            raise BillingUnavailableError("Stripe returned a Checkout session without a URL.")
        return session.url

    async def portal(self) -> str:
        stripe = self._gateway()
        account = await BillingAccountRepository(self.session, self.tenant_id).find()
        if account is None or not account.stripe_customer_id:
            raise BillingConflictError("The organization has no Stripe customer yet: subscribe first (checkout).")
        async with self._stripe_calls():
            portal = await stripe.create_portal_session(
                customer_id=account.stripe_customer_id, return_url=return_url(self.settings)
            )
        return portal.url

    async def _subscription(self, stripe: StripeGateway) -> tuple[BillingAccount, Subscription]:
        account = await locked_account(self.session, self.tenant_id)
        if not account.stripe_subscription_id or account.status in ENDED:
            raise BillingConflictError("The organization has no subscription: start one with checkout.")
        async with self._stripe_calls():
            sub = await stripe.get_subscription(account.stripe_subscription_id)
        if sub.status in ENDED:
            raise BillingConflictError("The subscription has ended: start a new one with checkout.")
        return account, sub

    async def _apply(self, account: BillingAccount, sub: Subscription, cause: str | None) -> out.Subscription:
        stripe = self._gateway()
        async with self._stripe_calls():
            seen = await observe(stripe, sub)
        await apply(self.session, self.tenant_id, account, seen, cause=cause, actor=self.principal.user_id)
        return await self.overview()

    async def change(self, plan_code: str) -> out.Subscription:
        """Upgrade at once with proration; downgrade when the period ends (the pending change). Asking for the
        current plan drops a pending change."""
        stripe = self._gateway()
        target = self._purchasable(plan_code)
        account, sub = await self._subscription(stripe)
        current = get_plan(sub.plan_code or account.plan)
        async with self._stripe_calls():
            if target.code == current.code:
                if not account.pending_plan:
                    raise BillingConflictError(f"The organization is already on the {current.name} plan.")
                if sub.schedule:
                    await stripe.release_schedule(sub.schedule)
                sub = await stripe.get_subscription(sub.id)
                return await self._apply(account, sub, None)
            price = await stripe.price_for_plan(target.code)
            if target.price_usd_cents > current.price_usd_cents:
                sub = await stripe.change_price_now(sub.id, price.id, proration_behavior="create_prorations")
                return await self._apply(account, sub, "upgrade")
            if sub.cancel_at_period_end:
                raise BillingConflictError("The subscription ends at the period's end; resume it before a downgrade.")
            await stripe.change_price_at_period_end(sub.id, price.id)
            sub = await stripe.get_subscription(sub.id)
        return await self._apply(account, sub, None)

    async def cancel(self, at_period_end: bool) -> out.Subscription:
        stripe = self._gateway()
        account, sub = await self._subscription(stripe)
        async with self._stripe_calls():
            if at_period_end:
                sub = await stripe.cancel_at_period_end(sub.id)
            else:
                sub = await stripe.cancel_now(sub.id, comment=f"canceled by {self.principal.user_id}")
        return await self._apply(account, sub, None if at_period_end else "canceled")

    async def metered_usage(self) -> out.MeteredUsage:
        """This month's usage as Stripe's meters got it (`GET /billing/usage`)."""
        self._gateway()
        return await metered_usage(self.session, self.tenant_id, self.api_calls, utcnow())

    async def resume(self) -> out.Subscription:
        stripe = self._gateway()
        account, sub = await self._subscription(stripe)
        if not sub.cancel_at_period_end and sub.status != "paused":
            raise BillingConflictError("The subscription is not set to end; there is nothing to resume.")
        async with self._stripe_calls():
            sub = await stripe.resume(sub.id)
        return await self._apply(account, sub, "resumed" if sub.status == "paused" else None)
