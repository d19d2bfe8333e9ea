"""Our own small views of Stripe objects (msgspec Structs), so no SDK object leaves this package.

Only the fields the billing domain reads; unknown fields are ignored, so Stripe adding fields breaks nothing.
Since API version 2025-03-31 a subscription's current period lives on its items; `Subscription` exposes it
as `current_period_start` / `current_period_end` all the same.
"""

from __future__ import annotations

from typing import Any

import msgspec

LOOKUP_PREFIX = "stock_tracker_"
LOOKUP_SUFFIX = "_monthly"


def price_lookup_key(plan_code: str) -> str:
    """`stock_tracker_<plan>_monthly`: how a plan's monthly price is found in any Stripe account."""
    return f"{LOOKUP_PREFIX}{plan_code}{LOOKUP_SUFFIX}"


def plan_for_lookup_key(lookup_key: str | None) -> str | None:
    """The plan code a lookup key names, or None when it is not one of ours."""
    if lookup_key and lookup_key.startswith(LOOKUP_PREFIX) and lookup_key.endswith(LOOKUP_SUFFIX):
        code = lookup_key[len(LOOKUP_PREFIX) : -len(LOOKUP_SUFFIX)]
        return code or None
    return None


class Recurring(msgspec.Struct, frozen=True):
    interval: str
    interval_count: int = 1
    usage_type: str = "licensed"
    meter: str | None = None


class Price(msgspec.Struct, frozen=True):
    id: str
    product: str
    currency: str
    unit_amount: int | None = None
    lookup_key: str | None = None
    active: bool = True
    recurring: Recurring | None = None
    nickname: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def plan_code(self) -> str | None:
        """The plan this price sells: its lookup key, else the `plan` metadata `billing sync-catalog` sets (a
        price replaced by a new amount gives its lookup key to the new one but keeps its metadata)."""
        return plan_for_lookup_key(self.lookup_key) or self.metadata.get("plan") or None

    @property
    def metered(self) -> bool:
        return self.recurring is not None and self.recurring.usage_type == "metered"


class Product(msgspec.Struct, frozen=True):
    id: str
    name: str
    active: bool = True
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


class InvoiceSettings(msgspec.Struct, frozen=True):
    default_payment_method: str | None = None


class Customer(msgspec.Struct, frozen=True):
    id: str
    email: str | None = None
    name: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    balance: int = 0
    delinquent: bool | None = None
    invoice_settings: InvoiceSettings | None = None
    deleted: bool = False

    @property
    def tenant_id(self) -> str | None:
        return self.metadata.get("tenant_id")


class CheckoutSession(msgspec.Struct, frozen=True):
    id: str
    url: str | None = None
    status: str | None = None  # open | complete | expired
    payment_status: str | None = None
    customer: str | None = None
    subscription: str | None = None
    invoice: str | None = None
    client_reference_id: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    expires_at: int | None = None


class PortalSession(msgspec.Struct, frozen=True):
    id: str
    url: str
    customer: str
    return_url: str | None = None


class SubscriptionItem(msgspec.Struct, frozen=True):
    id: str
    price: Price
    current_period_start: int
    current_period_end: int
    quantity: int | None = None


class _Items(msgspec.Struct, frozen=True):
    data: list[SubscriptionItem]


class CancellationDetails(msgspec.Struct, frozen=True):
    reason: str | None = None
    comment: str | None = None
    feedback: str | None = None


class Subscription(msgspec.Struct, frozen=True):
    id: str
    customer: str
    status: str  # trialing | active | past_due | canceled | unpaid | incomplete | incomplete_expired | paused
    items: _Items
    created: int
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    trial_start: int | None = None
    trial_end: int | None = None
    start_date: int | None = None
    schedule: str | None = None
    latest_invoice: str | None = None
    default_payment_method: str | None = None
    cancellation_details: CancellationDetails | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def item_list(self) -> list[SubscriptionItem]:
        return self.items.data

    @property
    def plan_item(self) -> SubscriptionItem:
        """The licensed item that carries the plan (metered items ride alongside)."""
        return next((i for i in self.items.data if not i.price.metered), self.items.data[0])

    @property
    def price(self) -> Price:
        return self.plan_item.price

    @property
    def plan_code(self) -> str | None:
        return self.price.plan_code

    @property
    def current_period_start(self) -> int:
        return self.plan_item.current_period_start

    @property
    def current_period_end(self) -> int:
        return self.plan_item.current_period_end


class PhaseItem(msgspec.Struct, frozen=True):
    price: str
    quantity: int | None = None


class Phase(msgspec.Struct, frozen=True):
    start_date: int
    end_date: int
    items: list[PhaseItem]


class PhaseWindow(msgspec.Struct, frozen=True):
    start_date: int
    end_date: int


class SubscriptionSchedule(msgspec.Struct, frozen=True):
    id: str
    status: str  # not_started | active | completed | released | canceled
    customer: str
    phases: list[Phase]
    end_behavior: str = "release"
    subscription: str | None = None
    current_phase: PhaseWindow | None = None
    released_at: int | None = None
    canceled_at: int | None = None

    def upcoming_phase(self, now: int) -> Phase | None:
        """The next phase that has not started yet (a pending plan change), if any."""
        if self.status not in ("active", "not_started"):
            return None
        return next((p for p in self.phases if p.start_date > now), None)


class _SubscriptionDetails(msgspec.Struct, frozen=True):
    subscription: str | None = None


class _InvoiceParent(msgspec.Struct, frozen=True):
    type: str
    subscription_details: _SubscriptionDetails | None = None


class _LineDetails(msgspec.Struct, frozen=True):
    proration: bool = False


class _LineParent(msgspec.Struct, frozen=True):
    type: str
    invoice_item_details: _LineDetails | None = None
    subscription_item_details: _LineDetails | None = None


class Period(msgspec.Struct, frozen=True):
    start: int
    end: int


class InvoiceLine(msgspec.Struct, frozen=True):
    id: str
    amount: int
    period: Period
    description: str | None = None
    quantity: int | None = None
    parent: _LineParent | None = None

    @property
    def proration(self) -> bool:
        parent = self.parent
        details = parent and (parent.invoice_item_details or parent.subscription_item_details)
        return bool(details and details.proration)


class _Lines(msgspec.Struct, frozen=True):
    data: list[InvoiceLine]
    has_more: bool = False


class Invoice(msgspec.Struct, frozen=True):
    id: str
    customer: str
    status: str | None  # draft | open | paid | uncollectible | void
    currency: str
    created: int
    amount_due: int = 0
    amount_paid: int = 0
    amount_remaining: int = 0
    total: int = 0
    subtotal: int = 0
    billing_reason: str | None = None
    attempt_count: int = 0
    next_payment_attempt: int | None = None
    period_start: int | None = None
    period_end: int | None = None
    number: str | None = None
    hosted_invoice_url: str | None = None
    parent: _InvoiceParent | None = None
    lines: _Lines | None = None

    @property
    def subscription_id(self) -> str | None:
        details = self.parent.subscription_details if self.parent else None
        return details.subscription if details else None

    @property
    def line_items(self) -> list[InvoiceLine]:
        return self.lines.data if self.lines else []


class _Aggregation(msgspec.Struct, frozen=True):
    formula: str


class Meter(msgspec.Struct, frozen=True):
    id: str
    event_name: str
    display_name: str
    default_aggregation: _Aggregation
    status: str = "active"


class MeterEvent(msgspec.Struct, frozen=True):
    event_name: str
    identifier: str
    timestamp: int
    payload: dict[str, str] = msgspec.field(default_factory=dict)
    duplicate: bool = False  # Stripe already had an event with this identifier (not counted twice)


class MeterEventSummary(msgspec.Struct, frozen=True):
    id: str
    meter: str
    start_time: int
    end_time: int
    aggregated_value: float


class EventData(msgspec.Struct, frozen=True):
    object: dict[str, Any]
    previous_attributes: dict[str, Any] | None = None


class WebhookEvent(msgspec.Struct, frozen=True):
    """A Stripe event (from a verified webhook or from the events API)."""

    id: str
    type: str
    created: int
    data: EventData
    livemode: bool = False
    api_version: str | None = None

    @property
    def object_id(self) -> str | None:
        value = self.data.object.get("id")
        return value if isinstance(value, str) else None

    @property
    def object_type(self) -> str | None:
        value = self.data.object.get("object")
        return value if isinstance(value, str) else None


class CatalogEntry(msgspec.Struct, frozen=True):
    """A plan as the catalogue sync needs it (built by the billing domain from its plan list)."""

    plan_code: str
    name: str
    unit_amount: int
    currency: str = "usd"
    interval: str = "month"


class CatalogResult(msgspec.Struct, frozen=True):
    plan_code: str
    lookup_key: str
    price: Price
    action: str  # unchanged | created | replaced (the old price was archived, its lookup key moved)
    replaced_price: str | None = None
