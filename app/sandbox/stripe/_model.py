"""The stand-in's objects: what each Stripe resource remembers between requests (rendering is `_render`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Metadata = dict[str, str]


@dataclass(slots=True)
class Customer:
    id: str
    created: int
    email: str | None = None
    name: str | None = None
    description: str | None = None
    phone: str | None = None
    metadata: Metadata = field(default_factory=dict)
    balance: int = 0  # negative = credit the next invoices use first
    currency: str | None = None
    invoice_prefix: str = ""
    next_invoice_sequence: int = 1
    default_payment_method: str | None = None  # invoice_settings.default_payment_method
    deleted: bool = False


@dataclass(slots=True)
class PaymentMethod:
    id: str
    created: int
    customer: str | None
    last4: str = "4242"
    exp_year: int = 2034
    decline: str | None = None  # every charge fails with this code (`pm_card_chargeCustomerFail`)


@dataclass(slots=True)
class Product:
    id: str
    created: int
    updated: int
    name: str
    description: str | None = None
    active: bool = True
    metadata: Metadata = field(default_factory=dict)
    default_price: str | None = None
    unit_label: str | None = None
    statement_descriptor: str | None = None
    url: str | None = None
    tax_code: str | None = None


@dataclass(slots=True)
class Price:
    id: str
    created: int
    product: str
    currency: str
    unit_amount: int | None
    unit_amount_decimal: Decimal | None
    interval: str | None  # None: a one-time price
    interval_count: int = 1
    usage_type: str = "licensed"
    meter: str | None = None
    lookup_key: str | None = None
    nickname: str | None = None
    active: bool = True
    metadata: Metadata = field(default_factory=dict)
    tax_behavior: str = "unspecified"
    trial_period_days: int | None = None

    def amount_for(self, quantity: Decimal | int) -> int:
        """Cents for ``quantity`` units, rounded half up as Stripe rounds line amounts."""
        unit = self.unit_amount_decimal if self.unit_amount_decimal is not None else Decimal(self.unit_amount or 0)
        return int((unit * Decimal(quantity)).to_integral_value(rounding="ROUND_HALF_UP"))


@dataclass(slots=True)
class Meter:
    id: str
    created: int
    updated: int
    display_name: str
    event_name: str
    formula: str  # sum | count | last
    customer_key: str = "stripe_customer_id"
    value_key: str = "value"
    status: str = "active"
    deactivated_at: int | None = None
    event_time_window: str | None = None


@dataclass(slots=True)
class MeterEvent:
    event_name: str
    identifier: str
    payload: dict[str, str]
    timestamp: int
    created: int
    meter: str | None
    customer: str | None
    value: Decimal
    error: str | None = None  # why it was not counted (Stripe reports these asynchronously)


@dataclass(slots=True)
class WebhookEndpoint:
    id: str
    created: int
    url: str
    secret: str
    enabled_events: list[str]
    description: str | None = None
    metadata: Metadata = field(default_factory=dict)
    status: str = "enabled"
    api_version: str | None = None

    def wants(self, event_type: str) -> bool:
        return self.status == "enabled" and ("*" in self.enabled_events or event_type in self.enabled_events)


@dataclass(slots=True)
class LineItem:
    price: str
    quantity: int | None


@dataclass(slots=True)
class CheckoutSession:
    id: str
    created: int
    expires_at: int
    mode: str
    line_items: list[LineItem]
    currency: str
    amount_subtotal: int
    success_url: str | None
    cancel_url: str | None
    url: str
    customer: str | None = None
    customer_email: str | None = None
    client_reference_id: str | None = None
    metadata: Metadata = field(default_factory=dict)
    subscription_data: dict[str, Any] = field(default_factory=dict)
    payment_method_collection: str = "always"
    allow_promotion_codes: bool | None = None
    locale: str | None = None
    status: str = "open"
    payment_status: str = "unpaid"
    subscription: str | None = None
    invoice: str | None = None
    customer_created: bool = False
    customer_details_email: str | None = None


@dataclass(slots=True)
class PortalConfiguration:
    id: str
    created: int
    updated: int
    is_default: bool
    features: dict[str, Any]
    business_profile: dict[str, Any]
    default_return_url: str | None = None
    metadata: Metadata = field(default_factory=dict)
    name: str | None = None
    active: bool = True


@dataclass(slots=True)
class PortalSession:
    id: str
    created: int
    customer: str
    configuration: str
    return_url: str | None
    url: str
    locale: str | None = None
    flow: dict[str, Any] | None = None


@dataclass(slots=True)
class SubItem:
    id: str
    created: int
    price: str
    quantity: int | None  # None for metered prices
    metadata: Metadata = field(default_factory=dict)


@dataclass(slots=True)
class Subscription:
    id: str
    created: int
    customer: str
    items: list[SubItem]
    currency: str
    period_start: int
    period_end: int
    billing_cycle_anchor: int
    start_date: int
    status: str = "incomplete"
    trial_start: int | None = None
    trial_end: int | None = None
    trial_end_behavior: str = "create_invoice"  # trial_settings.end_behavior.missing_payment_method
    trial_will_end_sent: bool = False
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None
    ended_at: int | None = None
    cancellation_reason: str | None = None
    cancellation_comment: str | None = None
    cancellation_feedback: str | None = None
    metadata: Metadata = field(default_factory=dict)
    description: str | None = None
    latest_invoice: str | None = None
    schedule: str | None = None
    default_payment_method: str | None = None
    collection_method: str = "charge_automatically"


@dataclass(slots=True)
class InvoiceItem:
    """A pending charge or credit (prorations) waiting for the subscription's next invoice."""

    id: str
    created: int
    customer: str
    subscription: str | None
    subscription_item: str | None
    price: str | None
    amount: int
    description: str
    period_start: int
    period_end: int
    proration: bool = True
    quantity: int = 1
    invoice: str | None = None


@dataclass(slots=True)
class InvoiceLine:
    id: str
    amount: int
    description: str
    price: str | None
    quantity: int | None
    period_start: int
    period_end: int
    subscription: str | None
    subscription_item: str | None = None
    invoice_item: str | None = None  # set for lines that came from an invoice item
    proration: bool = False


@dataclass(slots=True)
class Invoice:
    id: str
    created: int
    customer: str
    subscription: str | None
    billing_reason: str
    lines: list[InvoiceLine]
    currency: str
    period_start: int
    period_end: int
    status: str = "draft"
    number: str | None = None
    subtotal: int = 0
    starting_balance: int = 0
    ending_balance: int | None = None
    amount_due: int = 0
    amount_paid: int = 0
    attempt_count: int = 0
    attempted: bool = False
    next_payment_attempt: int | None = None
    finalized_at: int | None = None
    paid_at: int | None = None
    voided_at: int | None = None
    marked_uncollectible_at: int | None = None
    last_decline_code: str | None = None
    metadata: Metadata = field(default_factory=dict)


@dataclass(slots=True)
class Phase:
    start_date: int
    end_date: int
    items: list[LineItem]
    proration_behavior: str = "create_prorations"
    metadata: Metadata = field(default_factory=dict)
    trial_end: int | None = None


@dataclass(slots=True)
class Schedule:
    id: str
    created: int
    customer: str
    subscription: str | None
    phases: list[Phase]
    end_behavior: str = "release"
    status: str = "active"
    released_at: int | None = None
    released_subscription: str | None = None
    canceled_at: int | None = None
    completed_at: int | None = None
    metadata: Metadata = field(default_factory=dict)

    def current_phase(self, now: int) -> Phase | None:
        if self.status not in ("active", "not_started"):
            return None
        return next((p for p in self.phases if p.start_date <= now < p.end_date), None)


@dataclass(slots=True)
class Delivery:
    endpoint: str
    url: str
    status: int | None  # None: no answer (connection refused, timeout)
    error: str | None
    at: float  # wall-clock time of the attempt (the signature's `t`)
    sim_time: int
    kind: str  # auto | retry | manual


@dataclass(slots=True)
class Event:
    id: str
    created: int
    type: str
    data_object: dict[str, Any]
    previous_attributes: dict[str, Any] | None
    request_id: str | None
    idempotency_key: str | None
    api_version: str
    pending_endpoints: set[str] = field(default_factory=set)
    deliveries: list[Delivery] = field(default_factory=list)
    retry_at: int | None = None
    retries_left: int = 3
