"""Bodies of the billing API (`/api/v1/billing`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

PlanCode = Annotated[str, msgspec.Meta(min_length=1, max_length=40, description="A plan code, e.g. `pro`.")]
BillingStatus = Literal["trialing", "active", "past_due", "canceled", "self_hosted"]


class PlanLimits(msgspec.Struct):
    products: int
    connections: int
    webhook_endpoints: int
    members: int
    api_keys: int
    api_calls_per_month: int
    sync_interval_minutes: int
    manual_sync_interval_minutes: int
    history_retention_days: int


class Plan(msgspec.Struct):
    code: str
    name: str
    price_usd_cents: int
    currency: str
    interval: str
    purchasable: bool
    webhooks: bool
    limits: PlanLimits


class PlanList(msgspec.Struct):
    """The catalogue. While billing is off only the self-hosted plan applies (and is listed)."""

    billing_enabled: bool
    items: list[Plan]


class LimitUsage(msgspec.Struct):
    used: int
    limit: int


class ProductUsage(msgspec.Struct):
    used: int  # products the organization tracks
    limit: int  # products a sync keeps
    left_out: int  # products the latest syncs left out for the limit (tracked ones keep their data)


class ApiCallUsage(msgspec.Struct):
    used: int
    limit: int
    period: str  # calendar month (UTC), YYYY-MM


class Usage(msgspec.Struct):
    products: ProductUsage
    connections: LimitUsage
    webhook_endpoints: LimitUsage
    members: LimitUsage
    api_keys: LimitUsage
    api_calls: ApiCallUsage
    sync_interval_minutes: int
    manual_sync_interval_minutes: int


class PendingChange(msgspec.Struct):
    plan: str
    effective_at: datetime | None


class PlanChangeRecord(msgspec.Struct):
    """One recorded change of plan or status: what caused it, who asked, the Stripe event it came with."""

    from_plan: str
    to_plan: str
    from_status: str
    to_status: str
    cause: str
    actor_user_id: str | None
    stripe_event_id: str | None
    at: datetime


class Subscription(msgspec.Struct):
    """The organization's plan, its subscription's state and its usage against every limit."""

    billing_enabled: bool
    plan: str
    plan_name: str
    status: BillingStatus
    read_only: bool
    trial_ends_at: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    pending_change: PendingChange | None
    usage: Usage
    notices: list[str]
    recent_changes: list[PlanChangeRecord]


class CheckoutSessionCreate(msgspec.Struct, forbid_unknown_fields=True):
    plan: PlanCode


class CheckoutSession(msgspec.Struct):
    url: str


class PortalSession(msgspec.Struct):
    url: str


class SubscriptionUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /billing/change`: upgrade at once (prorated), downgrade at the period's end."""

    plan: PlanCode


class SubscriptionCancel(msgspec.Struct, forbid_unknown_fields=True):
    at_period_end: bool = True


class MeterDay(msgspec.Struct):
    date: date
    value: int


class MeterUsage(msgspec.Struct):
    """One Stripe meter this period: what was reported (with the identifiers' days), what is frozen and
    about to be sent, and what has accrued since the last report."""

    meter: str
    event_name: str
    reported: int
    pending: int
    accruing: int
    days: list[MeterDay]


class MeteredUsage(msgspec.Struct):
    period: str
    stripe_customer_id: str | None
    meters: list[MeterUsage]


class StripeEventAccepted(msgspec.Struct):
    received: bool
    duplicate: bool
