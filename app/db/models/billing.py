"""Billing: each organization's subscription state, its plan changes, what usage was reported to Stripe, and
the Stripe events received (docs/billing.md)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TenantMixin, TenantRowMixin, TimestampMixin


class BillingAccount(IdMixin, TimestampMixin, TenantMixin, Base):
    """One per organization (created at sign-up while billing is on): the local trial and the Stripe
    subscription's last known state. ``tenants.plan`` carries the plan the limits read.

    ``access_ends_at`` is when the organization becomes read-only (data kept, syncs paused): the end of the
    local trial, or the moment a subscription was found ended; None while a subscription is alive.
    """

    __tablename__ = "billing_accounts"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    status: Mapped[str] = mapped_column(String(32))
    plan: Mapped[str] = mapped_column(String(40))
    trial_ends_at: Mapped[datetime | None]
    access_ends_at: Mapped[datetime | None]
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    current_period_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    pending_plan: Mapped[str | None] = mapped_column(String(40))
    pending_plan_at: Mapped[datetime | None]
    synced_at: Mapped[datetime | None]


class PlanChange(IdMixin, TimestampMixin, TenantMixin, Base):
    """Every change of an organization's plan or subscription status: from → to, what caused it, who asked
    (a user, or None for Stripe or the clock) and the Stripe event it came with."""

    __tablename__ = "plan_changes"
    __table_args__ = (Index("ix_plan_changes_tenant_created", "tenant_id", "created_at"),)

    from_plan: Mapped[str] = mapped_column(String(40))
    to_plan: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    cause: Mapped[str] = mapped_column(String(40))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    stripe_event_id: Mapped[str | None] = mapped_column(String(255))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))


class UsageReport(IdMixin, TimestampMixin, TenantMixin, Base):
    """One meter event: usage of one meter in one hour (product-days: one day, filed under its first hour).

    The value is frozen when the row is written, before anything is sent; ``identifier`` is Stripe's dedupe
    key, so re-sending after a crash between the send and ``reported_at`` counts once.
    """

    __tablename__ = "usage_reports"
    __table_args__ = (UniqueConstraint("tenant_id", "meter", "hour"),)

    meter: Mapped[str] = mapped_column(String(40))
    hour: Mapped[datetime]
    value: Mapped[int] = mapped_column(BigInteger)
    identifier: Mapped[str] = mapped_column(String(200), unique=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(255))
    reported_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)


class ProductUsage(TenantRowMixin, Base):
    """Products a connection's syncs kept (and left out) on one day: the source of synced product-days.

    Written by the sync's write stage (through the billing service) in the sync's own transaction; the row
    holds the day's largest count. No foreign key: usage outlives a deleted connection.
    """

    __tablename__ = "product_usage"

    connection_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    synced: Mapped[int] = mapped_column(Integer)
    left_out: Mapped[int] = mapped_column(Integer, default=0)
    product_limit: Mapped[int] = mapped_column(Integer)
    plan: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime]


class StripeEvent(Base):
    """A system table (no tenant, no row-level security): a Stripe event is stored before anyone knows
    which organization it concerns (that takes a read from Stripe), and the webhook handler runs without a
    tenant. It keeps the event's identity only — never its payload: processing re-reads the objects from
    Stripe — so it holds no organization's data beyond the ids."""

    __tablename__ = "stripe_events"
    __table_args__ = (
        Index("ix_stripe_events_unprocessed", "received_at", postgresql_where=text("processed_at IS NULL")),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    created: Mapped[datetime]  # Stripe's `created`
    object_type: Mapped[str | None] = mapped_column(String(60))
    object_id: Mapped[str | None] = mapped_column(String(255))
    customer_id: Mapped[str | None] = mapped_column(String(255))
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(60))
    tenant_id: Mapped[uuid.UUID | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
