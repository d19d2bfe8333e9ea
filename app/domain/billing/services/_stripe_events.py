"""Webhooks from Stripe: verify → store once → acknowledge → process in a job.

The endpoint verifies `Stripe-Signature` on the raw body, stores the event keyed by its Stripe id (a
repeat is a no-op) and enqueues ``billing.stripe_event`` through the outbox (job id `stripe-event:<id>`),
all in the request's transaction, then answers 200. The job locks the event row (a second job for the
same event waits, then finds it processed), locks the organization's account, re-reads the customer's
subscription from Stripe and applies it (``_state``) — so duplicates have one effect and an older event
delivered after a newer one applies the current state, never an old one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import set_tenant
from app.db.models import StripeEvent
from app.db.outbox import JobQueue, add_job, unit_of_work
from app.domain.billing.repositories import StripeEventRepository, TenantRow
from app.domain.billing.services._errors import BillingDisabledError
from app.domain.billing.services._state import (
    PAYMENT_FAILED,
    apply,
    locked_account,
    observe_customer,
)
from app.domain.events.services import record_event
from app.integrations.stripe import StripeError, StripeGateway, WebhookEvent, WebhookSignatureError
from app.lib.clock import utcnow
from app.lib.errors import ValidationError

log = structlog.get_logger(__name__)
PROCESS_JOB = "billing.stripe_event"
# What processing reacts to; anything else is stored (so a repeat is recognised) and marked ignored.
HANDLED = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.trial_will_end",
        "invoice.paid",
        "invoice.payment_failed",
        "subscription_schedule.created",
        "subscription_schedule.updated",
        "subscription_schedule.released",
        "subscription_schedule.canceled",
        "subscription_schedule.completed",
    }
)
STUCK_AFTER = timedelta(minutes=10)


class InvalidStripeSignatureError(ValidationError):
    status_code = 400
    code = "invalid_signature"
    title = "The webhook's signature does not verify"


def _customer_of(obj: dict[str, Any]) -> str | None:
    value = obj.get("id") if obj.get("object") == "customer" else obj.get("customer")
    if isinstance(value, dict):  # expanded
        value = value.get("id")
    return value if isinstance(value, str) else None


def _tenant_hint(obj: dict[str, Any]) -> uuid.UUID | None:
    """The organization an object names: Checkout's `client_reference_id`, else `tenant_id` metadata (ours,
    on every customer, session and subscription we create)."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    parent = obj.get("parent") or {}
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    nested = details.get("metadata") if isinstance(details, dict) else None
    for raw in (obj.get("client_reference_id"), (meta or {}).get("tenant_id"), (nested or {}).get("tenant_id")):
        if isinstance(raw, str):
            try:
                return uuid.UUID(raw)
            except ValueError:
                continue
    return None


class StripeWebhookService:
    """The request side: verify on the raw body, store once, enqueue processing (no tenant context)."""

    def __init__(self, session: AsyncSession, stripe: StripeGateway | None) -> None:
        self.session = session
        self.stripe = stripe

    async def receive(self, payload: bytes, signature: str | None) -> bool:
        """Verify and store; True when the event is new (False: a repeat, acknowledged all the same)."""
        if self.stripe is None:
            raise BillingDisabledError("Billing is off on this deployment: there is no Stripe webhook endpoint.")
        try:
            event = self.stripe.verify_webhook(payload, signature)
        except WebhookSignatureError as exc:
            raise InvalidStripeSignatureError(exc.message) from None
        return await store_event(self.session, event)


async def store_event(session: AsyncSession, event: WebhookEvent) -> bool:
    obj = event.data.object
    handled = event.type in HANDLED
    row = StripeEvent(
        id=event.id,
        type=event.type,
        created=datetime.fromtimestamp(event.created, UTC),
        object_type=event.object_type,
        object_id=event.object_id,
        customer_id=_customer_of(obj),
        livemode=event.livemode,
        processed_at=None if handled else utcnow(),
        outcome=None if handled else "ignored",
        tenant_id=_tenant_hint(obj),
        attempts=0,
    )
    stored = await StripeEventRepository(session).insert_once(row)
    if stored and handled:
        add_job(session, PROCESS_JOB, f"stripe-event:{event.id}", event_id=event.id)
    return stored


class StripeEventProcessor:
    """The job side: one stored event, processed once."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], queue: JobQueue | None, stripe: StripeGateway | None
    ) -> None:
        self.sessionmaker = sessionmaker
        self.queue = queue
        self.stripe = stripe

    async def process(self, event_id: str) -> str:
        """Apply what the event is about; returns the outcome (`applied`, `unchanged`, `duplicate`, …)."""
        if self.stripe is None:
            return "billing_off"
        async with unit_of_work(self.sessionmaker, self.queue) as session:
            events = StripeEventRepository(session)
            row = await events.get_for_update(event_id)
            if row is None:
                return "unknown"
            if row.processed_at is not None:
                return "duplicate"
            try:
                outcome, tenant_id = await self._apply(session, row, row.customer_id)
            except StripeError as exc:
                if exc.transient:
                    raise  # arq retries the job; the event stays unprocessed
                outcome, tenant_id = f"stripe_error:{exc.code or type(exc).__name__}"[:60], row.tenant_id
                log.warning("billing.event_failed", event_id=event_id, error=exc.message)
            row.processed_at = utcnow()
            row.outcome = outcome
            row.tenant_id = tenant_id
            row.last_error = None
        log.info("billing.event_processed", event_id=event_id, type=row.type, outcome=outcome)
        return outcome

    async def _apply(
        self, session: AsyncSession, row: StripeEvent, customer: str | None
    ) -> tuple[str, uuid.UUID | None]:
        stripe = self.stripe
        assert stripe is not None
        if customer is None:
            customer = await self._customer(row)
        if customer is None:
            return "no_customer", row.tenant_id
        tenant_id = row.tenant_id
        if tenant_id is None:
            found = await stripe.get_customer(customer)
            tenant_id = uuid.UUID(found.tenant_id) if found.tenant_id else None
        if tenant_id is None:
            return "unknown_organization", None
        await set_tenant(session, tenant_id)
        if await TenantRow(session, tenant_id).plan_and_name() is None:
            return "unknown_organization", None
        account = await locked_account(session, tenant_id)
        if account.stripe_customer_id not in (None, customer):
            log.warning("billing.customer_mismatch", event_id=row.id)
            return "customer_mismatch", tenant_id
        seen = await observe_customer(stripe, customer)
        change = None
        if seen is not None:
            change = await apply(session, tenant_id, account, seen, stripe_event_id=row.id)
        if row.type == "invoice.payment_failed" and row.object_id:
            invoice = await stripe.get_invoice(row.object_id)
            record_event(
                session,
                tenant_id,
                PAYMENT_FAILED,
                {
                    "invoice_id": invoice.id,
                    "amount_due": invoice.amount_due,
                    "currency": invoice.currency,
                    "attempt_count": invoice.attempt_count,
                    "next_payment_attempt": (
                        datetime.fromtimestamp(invoice.next_payment_attempt, UTC).isoformat()
                        if invoice.next_payment_attempt
                        else None
                    ),
                    "hosted_invoice_url": invoice.hosted_invoice_url,
                    "plan": account.plan,
                    "status": account.status,
                },
                key=f"{PAYMENT_FAILED}:{invoice.id}:{invoice.attempt_count}",
            )
        return ("applied" if change is not None else "unchanged"), tenant_id

    async def _customer(self, row: StripeEvent) -> str | None:
        """The customer an event is about, re-read from Stripe (when the stored hint is gone)."""
        stripe = self.stripe
        assert stripe is not None
        if not row.object_id:
            return None
        kind = row.object_type
        if kind == "customer":
            return row.object_id
        if kind == "subscription":
            return (await stripe.get_subscription(row.object_id)).customer
        if kind == "invoice":
            return (await stripe.get_invoice(row.object_id)).customer
        if kind == "checkout.session":
            return (await stripe.get_checkout_session(row.object_id)).customer
        if kind == "subscription_schedule":
            return (await stripe.get_schedule(row.object_id)).customer
        return None

    async def sweep(self, now: datetime | None = None, limit: int = 200) -> int:
        """Re-enqueue events left unprocessed (a job that gave up); forget processed ones after 30 days."""
        now = now or utcnow()
        async with unit_of_work(self.sessionmaker, self.queue) as session:
            events = StripeEventRepository(session)
            stuck = await events.stuck(now - STUCK_AFTER, limit)
            for event_id in stuck:
                add_job(session, PROCESS_JOB, f"stripe-event:{event_id}:{now:%Y%m%d%H%M}", event_id=event_id)
            await events.forget_processed(now - timedelta(days=30), 5000)
        return len(stuck)
