"""One Stripe account of the stand-in: its key, its simulated clock, its objects, events and scripted payments.

Accounts are separate worlds (like separate Stripe accounts), so tests sharing one sandbox do not see each
other. Everything an account generates (ids, secrets) comes from its own seeded RNG, so the same seed and
the same requests give the same objects.
"""

from __future__ import annotations

import random
import string
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from app.sandbox.stripe import _model as m
from app.sandbox.stripe._errors import StripeApiError, no_such

# The API version events and webhook endpoints report (what stripe-python 16.1 pins).
API_VERSION = "2026-10-28.endive"
ALPHABET = string.ascii_letters + string.digits
DAY = 86_400
HOUR = 3_600

Delivery = Literal["auto", "manual"]

# Id prefixes → the account store that holds them (longest prefixes first).
STORES: tuple[tuple[str, str, str], ...] = (
    ("sub_sched_", "schedules", "subscription schedule"),
    ("cs_test_", "sessions", "checkout.session"),
    ("mtr_test_", "meters", "billing.meter"),
    ("cus_", "customers", "customer"),
    ("prod_", "products", "product"),
    ("price_", "prices", "price"),
    ("sub_", "subscriptions", "subscription"),
    ("si_", "items", "subscription item"),
    ("in_", "invoices", "invoice"),
    ("ii_", "invoice_items", "invoiceitem"),
    ("evt_", "events", "event"),
    ("we_", "webhook_endpoints", "webhook endpoint"),
    ("bps_", "portal_sessions", "billing_portal.session"),
    ("bpc_", "portal_configs", "billing_portal.configuration"),
    ("pm_", "payment_methods", "payment method"),
)


class Ids:
    """Stripe-looking ids from a seeded RNG."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def token(self, length: int = 24) -> str:
        return "".join(self._rng.choices(ALPHABET, k=length))

    def new(self, prefix: str, length: int = 24) -> str:
        return prefix + self.token(length)


@dataclass(slots=True)
class Saved:
    """An idempotent request's fingerprint and the answer it got."""

    fingerprint: str
    status: int
    body: bytes
    created: int


@dataclass(slots=True)
class PaymentScript:
    """Scripted outcome of the next payment attempts: decline ``remaining`` of them (None: until cleared)."""

    decline_code: str
    customer: str | None
    remaining: int | None


@dataclass(slots=True)
class RequestContext:
    id: str
    idempotency_key: str | None


class Account:
    def __init__(
        self,
        *,
        account_id: str,
        secret_key: str,
        seed: int,
        now: int,
        delivery: Delivery,
        public_base: str | None,
    ) -> None:
        self.id = account_id
        self.secret_key = secret_key
        self.seed = seed
        self.started_at = now
        self.delivery: Delivery = delivery
        self.public_base = public_base  # base URL of the hosted pages (checkout, portal, invoices)
        self.public_base_from_requests = public_base is None  # then: where the latest API call came in
        self._reset_state()

    def _reset_state(self) -> None:
        self.ids = Ids(self.seed)
        self.request_ids = Ids(self.seed ^ 0x5EED)  # its own stream: reads do not shift the objects' ids
        self.now = self.started_at
        self.customers: dict[str, m.Customer] = {}
        self.payment_methods: dict[str, m.PaymentMethod] = {}
        self.products: dict[str, m.Product] = {}
        self.prices: dict[str, m.Price] = {}
        self.meters: dict[str, m.Meter] = {}
        self.meter_events: list[m.MeterEvent] = []
        self.meter_identifiers: dict[str, int] = {}
        self.sessions: dict[str, m.CheckoutSession] = {}
        self.portal_configs: dict[str, m.PortalConfiguration] = {}
        self.portal_sessions: dict[str, m.PortalSession] = {}
        self.subscriptions: dict[str, m.Subscription] = {}
        self.items: dict[str, tuple[str, m.SubItem]] = {}  # si_ → (subscription id, item)
        self.schedules: dict[str, m.Schedule] = {}
        self.invoices: dict[str, m.Invoice] = {}
        self.invoice_items: dict[str, m.InvoiceItem] = {}
        self.webhook_endpoints: dict[str, m.WebhookEndpoint] = {}
        self.events: dict[str, m.Event] = {}
        self.outbox: deque[str] = deque()  # events waiting for automatic delivery, in order
        self.held: list[str] = []  # events kept back in manual delivery mode
        self.idempotency: dict[str, Saved] = {}
        self.payment_scripts: list[PaymentScript] = []
        self.request: RequestContext | None = None

    def reset(self) -> None:
        """Forget every object and event and rewind the clock; the key and the control webhook stay."""
        keep = [e for e in self.webhook_endpoints.values() if e.description == CONTROL_ENDPOINT]
        self._reset_state()
        for endpoint in keep:
            self.webhook_endpoints[endpoint.id] = endpoint

    # ---- lookups -------------------------------------------------------------------------------------------

    def store(self, object_id: str) -> tuple[dict[str, Any], str] | None:
        for prefix, attr, kind in STORES:
            if object_id.startswith(prefix):
                return getattr(self, attr), kind
        return None

    def find(self, object_id: str) -> Any | None:
        found = self.store(object_id)
        if found is None:
            return None
        value = found[0].get(object_id)
        if isinstance(value, tuple):  # subscription items are kept beside their subscription id
            return value[1]
        return value

    def customer(self, customer_id: str, param: str = "customer") -> m.Customer:
        found = self.customers.get(customer_id)
        if found is None or found.deleted:
            raise no_such("customer", customer_id, param)
        return found

    def price(self, price_id: str, param: str = "price") -> m.Price:
        found = self.prices.get(price_id)
        if found is None:
            raise no_such("price", price_id, param)
        return found

    def subscription(self, subscription_id: str, param: str = "id") -> m.Subscription:
        found = self.subscriptions.get(subscription_id)
        if found is None:
            raise no_such("subscription", subscription_id, param)
        return found

    def invoice(self, invoice_id: str, param: str = "id") -> m.Invoice:
        found = self.invoices.get(invoice_id)
        if found is None:
            raise no_such("invoice", invoice_id, param)
        return found

    def schedule(self, schedule_id: str, param: str = "schedule") -> m.Schedule:
        found = self.schedules.get(schedule_id)
        if found is None:
            raise no_such("subscription_schedule", schedule_id, param)
        return found

    def price_by_lookup_key(self, lookup_key: str) -> m.Price | None:
        return next((p for p in self.prices.values() if p.lookup_key == lookup_key), None)

    def meter_for_event(self, event_name: str) -> m.Meter | None:
        return next((mt for mt in self.meters.values() if mt.event_name == event_name), None)

    # ---- payments --------------------------------------------------------------------------------------------

    def script_payments(self, decline_code: str | None, customer: str | None, times: int | None) -> None:
        """Decline the next ``times`` attempts (None: until told otherwise); ``decline_code`` None clears."""
        if decline_code is None:
            self.payment_scripts = [s for s in self.payment_scripts if customer is not None and s.customer != customer]
            return
        self.payment_scripts.append(PaymentScript(decline_code, customer, times))

    def take_decline(self, customer: str) -> str | None:
        for script in self.payment_scripts:
            if script.customer not in (None, customer):
                continue
            if script.remaining is not None:
                script.remaining -= 1
                if script.remaining <= 0:
                    self.payment_scripts.remove(script)
            return script.decline_code
        return None

    # ---- events ----------------------------------------------------------------------------------------------

    def emit(self, event_type: str, data_object: dict[str, Any], previous: dict[str, Any] | None = None) -> m.Event:
        """Record an event and queue it for every webhook endpoint that wants it."""
        request = self.request
        event = m.Event(
            id=self.ids.new("evt_"),
            created=self.now,
            type=event_type,
            data_object=data_object,
            previous_attributes=previous,
            request_id=request.id if request else None,
            idempotency_key=request.idempotency_key if request else None,
            api_version=API_VERSION,
        )
        event.pending_endpoints = {e.id for e in self.webhook_endpoints.values() if e.wants(event_type)}
        self.events[event.id] = event
        if event.pending_endpoints:
            (self.outbox.append if self.delivery == "auto" else self.held.append)(event.id)
        return event

    def event(self, event_id: str, param: str = "id") -> m.Event:
        found = self.events.get(event_id)
        if found is None:
            raise no_such("event", event_id, param)
        return found


CONTROL_ENDPOINT = "Configured through the stand-in's control API"


def ensure(condition: bool, error: StripeApiError) -> None:
    if not condition:
        raise error
