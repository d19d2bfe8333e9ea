"""The transactional outbox: jobs recorded in the caller's transaction, enqueued after commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TimestampMixin


class OutboxMessage(IdMixin, TimestampMixin, Base):
    """A system table (no tenant RLS): the relay and the sweep read it across tenants.

    It holds job names and primitive arguments only, never tenant data beyond ids.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "created_at", postgresql_where=text("enqueued_at IS NULL")),)

    job_name: Mapped[str] = mapped_column(String(100))
    job_id: Mapped[str] = mapped_column(String(200), unique=True)
    tenant_id: Mapped[uuid.UUID | None]
    args: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    defer_until: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
