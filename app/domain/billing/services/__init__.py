"""The billing area's public surface: the plans, the limit checks other areas call where limits bite, the
subscription use-cases behind `/api/v1/billing`, the Stripe webhook pipeline and usage metering.

Other areas reach billing only through here (import contracts, docs/architecture.md). Billing imports
no area that imports it back (the API-call counter it reports is handed in by the caller), so importing
this package never meets itself half-initialized.
"""

from __future__ import annotations

from app.domain.billing.plans import (
    MIN_SYNC_INTERVAL_MINUTES,
    PLANS,
    SELF_HOSTED,
    TRIAL,
    Plan,
    RateLimitWindow,
    effective_plan,
    get_plan,
    limit_of,
)
from app.domain.billing.services._account import BillingService, PlanCatalog, plan_catalog
from app.domain.billing.services._errors import (
    BillingConflictError,
    BillingDisabledError,
    BillingUnavailableError,
    PaymentRequiredError,
    PlanLimitError,
    SyncIntervalError,
    plan_limit_error,
)
from app.domain.billing.services._limits import (
    ProductAllowance,
    check_manual_sync,
    ensure_within_limit,
    ensure_writable,
    is_read_only,
    product_allowance,
    schedulable,
    start_trial,
    tenant_plan,
)
from app.domain.billing.services._metering import METERS, UsageReporter, sync_catalog
from app.domain.billing.services._state import PAYMENT_FAILED, PLAN_CHANGED
from app.domain.billing.services._stripe_events import (
    PROCESS_JOB,
    StripeEventProcessor,
    StripeWebhookService,
    store_event,
)

__all__ = [
    "METERS",
    "MIN_SYNC_INTERVAL_MINUTES",
    "PAYMENT_FAILED",
    "PLANS",
    "PLAN_CHANGED",
    "PROCESS_JOB",
    "SELF_HOSTED",
    "TRIAL",
    "BillingConflictError",
    "BillingDisabledError",
    "BillingService",
    "BillingUnavailableError",
    "PaymentRequiredError",
    "Plan",
    "PlanCatalog",
    "PlanLimitError",
    "ProductAllowance",
    "RateLimitWindow",
    "StripeEventProcessor",
    "StripeWebhookService",
    "SyncIntervalError",
    "UsageReporter",
    "check_manual_sync",
    "effective_plan",
    "ensure_within_limit",
    "ensure_writable",
    "get_plan",
    "is_read_only",
    "limit_of",
    "plan_catalog",
    "plan_limit_error",
    "product_allowance",
    "schedulable",
    "start_trial",
    "store_event",
    "sync_catalog",
    "tenant_plan",
]
