"""The billing area's errors, each a problem document with a stable code."""

from __future__ import annotations

from datetime import datetime

from app.domain.billing.plans import LIMITS, TRIAL, Plan, limit_of, purchasable_plans, upgrades_from
from app.lib.errors import (
    AppError,
    ConflictError,
    PermissionDeniedError,
    PlanLimit,
    RateLimitedError,
    ServiceUnavailableError,
    ValidationError,
)

CHECKOUT = "POST /api/v1/billing/checkout"
CHANGE = "POST /api/v1/billing/change"

_NOUNS = {
    "products": "products",
    "connections": "marketplace connections",
    "webhook_endpoints": "webhook endpoints",
    "members": "members",
    "api_keys": "active API keys",
}


class PlanLimitError(PermissionDeniedError):
    """403 `plan-limit`: creating one more would go over the plan; ``plan_limit`` names the limit, the plan
    and the upgrade path."""

    code = "plan_limit"
    title = "Your plan's limit is reached"


class SyncIntervalError(RateLimitedError):
    """429 `sync-interval`: manual syncs are held to the plan's interval; says when the next is allowed."""

    code = "sync_interval"
    title = "Manual syncs are limited to your plan's interval"


class PaymentRequiredError(AppError):
    """402: the organization is read-only (trial over or subscription ended); data is kept."""

    status_code = 402
    code = "payment_required"
    title = "Payment required"


class BillingDisabledError(ConflictError):
    code = "billing_disabled"
    title = "Billing is off on this deployment"


class BillingConflictError(ConflictError):
    code = "billing_conflict"
    title = "Not possible with the subscription as it is"


class BillingUnavailableError(ServiceUnavailableError):
    code = "billing_unavailable"
    title = "The payment provider is unavailable"


class UnknownPlanError(ValidationError):
    code = "validation_error"


def upgrade_request(plan: Plan) -> str:
    """Where more comes from: a trial (or no subscription) checks out; a subscriber changes plan."""
    return CHECKOUT if plan.code == TRIAL or not plan.purchasable else CHANGE


def plan_limit_error(plan: Plan, limit: str, current: int) -> PlanLimitError:
    allowed = limit_of(plan, limit)
    better = upgrades_from(plan.code, limit, current)
    noun = _NOUNS.get(limit, limit.replace("_", " "))
    if limit == "webhook_endpoints" and not plan.webhooks:
        what = f"The {plan.name} plan does not include webhooks."
    else:
        what = f"The {plan.name} plan allows {allowed} {noun}; the organization has {current}."
    how = f" Upgrade to {' or '.join(better)} ({upgrade_request(plan)})." if better else ""
    if limit in ("connections", "webhook_endpoints", "members", "api_keys"):
        how += " Or remove one first."
    return PlanLimitError(
        what + how,
        plan_limit=PlanLimit(
            limit=limit,
            plan=plan.code,
            allowed=allowed,
            current=current,
            upgrade_plans=better,
            upgrade=upgrade_request(plan) if better else None,
        ),
    )


def sync_interval_error(plan: Plan, next_at: datetime, retry_after: int) -> SyncIntervalError:
    minutes = plan.manual_sync_interval_minutes
    better = [
        p.code for p in purchasable_plans() if p.code != plan.code and 0 < p.manual_sync_interval_minutes < minutes
    ]
    how = f" Plans with shorter intervals: {', '.join(better)} ({upgrade_request(plan)})." if better else ""
    return SyncIntervalError(
        f"The {plan.name} plan allows a manual sync of a connection every {minutes} minutes; the next one is "
        f"allowed at {next_at.isoformat(timespec='seconds')}.{how}",
        headers={"Retry-After": str(retry_after)},
        plan_limit=PlanLimit(
            limit="sync_interval",
            plan=plan.code,
            allowed=minutes,
            upgrade_plans=better,
            upgrade=upgrade_request(plan) if better else None,
            next_allowed_at=next_at,
        ),
    )


__all__ = [
    "LIMITS",
    "BillingConflictError",
    "BillingDisabledError",
    "BillingUnavailableError",
    "PaymentRequiredError",
    "PlanLimitError",
    "SyncIntervalError",
    "UnknownPlanError",
    "plan_limit_error",
    "sync_interval_error",
    "upgrade_request",
]
