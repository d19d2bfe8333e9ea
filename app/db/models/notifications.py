"""Alert rules and alerts, events, outgoing webhooks, notification channels (Telegram) and their logs."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TenantMixin, TimestampMixin

OPEN = text("status = 'open'")
PENDING = text("status = 'pending'")


class AlertRule(IdMixin, TimestampMixin, TenantMixin, Base):
    """The tenant default (no product), a product override, or a product × warehouse override."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        Index("uq_alert_rules_default", "tenant_id", unique=True, postgresql_where=text("product_id IS NULL")),
        Index(
            "uq_alert_rules_product",
            "tenant_id",
            "product_id",
            unique=True,
            postgresql_where=text("product_id IS NOT NULL AND warehouse_id IS NULL"),
        ),
        Index(
            "uq_alert_rules_product_warehouse",
            "tenant_id",
            "product_id",
            "warehouse_id",
            unique=True,
            postgresql_where=text("warehouse_id IS NOT NULL"),
        ),
        CheckConstraint("warehouse_id IS NULL OR product_id IS NOT NULL", name="warehouse_needs_product"),
        CheckConstraint("max_alerts_per_sync BETWEEN 0 AND 100000", name="max_alerts_per_sync"),
    )

    product_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    warehouse_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("warehouses.id", ondelete="CASCADE"))
    enabled: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    units_below: Mapped[int | None]
    days_of_cover_below: Mapped[float | None] = mapped_column(Double)
    cover_window_days: Mapped[int] = mapped_column(default=14, server_default=text("14"))
    hysteresis_units: Mapped[int] = mapped_column(default=2, server_default=text("2"))
    hysteresis_days: Mapped[float] = mapped_column(Double, default=1.0, server_default=text("1"))
    # Quiet hours live on the default rule only (local wall-clock times in the tenant's time zone).
    quiet_hours_start: Mapped[time | None] = mapped_column(Time)
    quiet_hours_end: Mapped[time | None] = mapped_column(Time)
    # On the default rule only: a sync that would send more per-product alerts than this sends one digest.
    max_alerts_per_sync: Mapped[int] = mapped_column(default=20, server_default=text("20"))


class Alert(IdMixin, TimestampMixin, TenantMixin, Base):
    """One low/out episode of a product (or product × warehouse): open → resolved, never two open at once."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("uq_alerts_open_subject", "tenant_id", "subject_key", unique=True, postgresql_where=OPEN),
        Index("ix_alerts_tenant_opened", "tenant_id", "opened_at"),
        Index("ix_alerts_connection_open", "connection_id", postgresql_where=OPEN),
        CheckConstraint("status IN ('open', 'resolved')", name="status"),
        CheckConstraint("level IN ('low', 'out')", name="level"),
    )

    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    warehouse_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("warehouses.id", ondelete="CASCADE"))
    subject_key: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(10), default="open")
    level: Mapped[str] = mapped_column(String(10))
    rule_scope: Mapped[str] = mapped_column(String(20))
    threshold: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    opened_at: Mapped[datetime]
    opened_run_id: Mapped[uuid.UUID | None]
    quantity_at_open: Mapped[int]
    days_of_cover_at_open: Mapped[float | None] = mapped_column(Double)
    last_quantity: Mapped[int]
    last_days_of_cover: Mapped[float | None] = mapped_column(Double)
    resolved_at: Mapped[datetime | None]
    resolved_run_id: Mapped[uuid.UUID | None]
    resolution: Mapped[str | None] = mapped_column(String(40))


class AlertEvaluation(TenantMixin, Base):
    """One evaluation per sync run: a second job for the same run finds its row and changes nothing."""

    __tablename__ = "alert_evaluations"
    __table_args__ = (Index("ix_alert_evaluations_connection_id_evaluated_at", "connection_id", "evaluated_at"),)

    run_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    evaluated_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # md5 of the rules the connection was evaluated under: a change re-evaluates every product.
    rules_fingerprint: Mapped[str | None] = mapped_column(String(32))


class Event(TenantMixin, Base):
    """Something that happened, with a stable id derived from its key (recording a key twice adds nothing)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(60))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class WebhookEndpoint(IdMixin, TimestampMixin, TenantMixin, Base):
    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(500), default="", server_default="")
    # Empty means every event type.
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(60)), default=list, server_default="{}")
    enabled: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    disabled_at: Mapped[datetime | None]
    # Encrypted with the credential cipher: signing needs the secret itself, so it cannot be hashed.
    secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_expires_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]


class WebhookDelivery(IdMixin, TimestampMixin, TenantMixin, Base):
    """One event for one endpoint; attempts are scheduled through ``next_attempt_at`` (swept each minute)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=PENDING),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempt_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(default=8, server_default=text("8"))
    next_attempt_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(300))
    succeeded_at: Mapped[datetime | None]


class WebhookAttempt(IdMixin, TenantMixin, Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery", "delivery_id", "attempt_no"),)

    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"))
    attempt_no: Mapped[int]
    started_at: Mapped[datetime]
    duration_ms: Mapped[int]
    webhook_timestamp: Mapped[int]
    status_code: Mapped[int | None]
    outcome: Mapped[str] = mapped_column(String(12))  # success | retry | failed | blocked
    error: Mapped[str | None] = mapped_column(String(300))
    response_excerpt: Mapped[str | None] = mapped_column(Text)


class NotificationChannel(IdMixin, TimestampMixin, TenantMixin, Base):
    """A linked Telegram chat of a tenant."""

    __tablename__ = "notification_channels"
    __table_args__ = (UniqueConstraint("tenant_id", "kind", "chat_id"), Index(None, "chat_id"))

    kind: Mapped[str] = mapped_column(String(20), default="telegram")
    chat_id: Mapped[int] = mapped_column(BigInteger)
    chat_title: Mapped[str | None] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    deactivated_reason: Mapped[str | None] = mapped_column(String(300))
    linked_by_user_id: Mapped[uuid.UUID | None]
    last_sent_at: Mapped[datetime | None]


class Notification(IdMixin, TenantMixin, Base):
    """One event for one channel: sent at once, or held for quiet hours and sent in the digest."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("channel_id", "event_id"),
        Index("ix_notifications_channel_status", "channel_id", "status"),
        Index("ix_notifications_due", "status", "held_until", postgresql_where=text("status IN ('pending', 'held')")),
        CheckConstraint("status IN ('pending', 'held', 'sent', 'dropped')", name="status"),
    )

    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("notification_channels.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12), default="pending")
    held_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    sent_at: Mapped[datetime | None]
    in_digest: Mapped[bool] = mapped_column(default=False, server_default=text("false"))


class Suppression(IdMixin, TenantMixin, Base):
    """What was not sent (or not sent at once) and why: quiet hours, an inactive channel, a disabled endpoint."""

    __tablename__ = "notification_suppressions"
    __table_args__ = (Index("ix_notification_suppressions_tenant_created", "tenant_id", "created_at"),)

    reason: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="", server_default="")
    event_id: Mapped[uuid.UUID | None]
    event_type: Mapped[str | None] = mapped_column(String(60))
    channel_id: Mapped[uuid.UUID | None]
    endpoint_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class TelegramLinkCode(IdMixin, TenantMixin, Base):
    """A one-time, expiring code for `/start <code>`; only its hash is stored."""

    __tablename__ = "telegram_link_codes"

    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_by_user_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class TelegramUpdate(Base):
    """A system table (no tenant RLS): an update arrives before we know whose chat it is.

    Unique on ``update_id`` so an update Telegram delivers twice is stored and handled once.
    """

    __tablename__ = "telegram_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    processed_at: Mapped[datetime | None]
    reply: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    replied_at: Mapped[datetime | None]


__all__ = [
    "Alert",
    "AlertEvaluation",
    "AlertRule",
    "Event",
    "Notification",
    "NotificationChannel",
    "Suppression",
    "TelegramLinkCode",
    "TelegramUpdate",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
