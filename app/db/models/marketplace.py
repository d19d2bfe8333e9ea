"""Marketplace connections, catalogue, warehouses, stock, history, orders and sync runs."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Enum,
    ForeignKey,
    Identity,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, IdMixin, TenantMixin, TenantRowMixin, TimestampMixin


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


class Marketplace(enum.StrEnum):
    WILDBERRIES = "wildberries"
    OZON = "ozon"


class ConnectionStatus(enum.StrEnum):
    ACTIVE = "active"
    INVALID = "invalid"
    RATE_LIMITED = "rate_limited"
    DISABLED = "disabled"


class WarehouseKind(enum.StrEnum):
    FBO = "fbo"  # operated by the marketplace (WB calls it FBW)
    FBS = "fbs"  # operated by the seller


class SyncStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # on a marketplace budget, until ``resume_at``
    SUCCEEDED = "succeeded"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"


class Connection(IdMixin, TimestampMixin, TenantMixin, Base):
    __tablename__ = "connections"

    marketplace: Mapped[Marketplace] = mapped_column(_enum(Marketplace, "marketplace"))
    name: Mapped[str] = mapped_column(String(200))
    credentials_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[ConnectionStatus] = mapped_column(
        _enum(ConnectionStatus, "connection_status"), default=ConnectionStatus.ACTIVE
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    last_checked_at: Mapped[datetime | None]
    token_type: Mapped[str | None] = mapped_column(String(40))
    token_expires_at: Mapped[datetime | None]
    token_categories: Mapped[list[str] | None] = mapped_column(ARRAY(String(40)))
    missing_categories: Mapped[list[str] | None] = mapped_column(ARRAY(String(40)))
    # Incremental catalogue cursor (WB: {"updatedAt", "nmID"}), advanced only after a whole stage succeeds.
    sync_cursor: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    last_sync_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_sync_status: Mapped[str | None] = mapped_column(String(40))
    # When the last run started, and how the last run ended: succeeded, partially_failed, or the failed
    # run's error_code (rate_limited, abandoned, marketplace_unavailable, …). last_success_at moves only on
    # succeeded.
    last_attempt_at: Mapped[datetime | None]
    last_outcome: Mapped[str | None] = mapped_column(String(40))
    last_scheduled_slot: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class Warehouse(IdMixin, TimestampMixin, TenantMixin, Base):
    __tablename__ = "warehouses"
    __table_args__ = (UniqueConstraint("connection_id", "external_id"),)

    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[WarehouseKind] = mapped_column(_enum(WarehouseKind, "warehouse_kind"))
    region: Mapped[str | None] = mapped_column(String(300))


class Product(IdMixin, TimestampMixin, TenantMixin, Base):
    __tablename__ = "products"
    __table_args__ = (
        UniqueConstraint("connection_id", "external_id"),
        Index("ix_products_tenant_id_id", "tenant_id", "id"),
    )

    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), index=True)
    marketplace: Mapped[Marketplace] = mapped_column(_enum(Marketplace, "marketplace"))
    external_id: Mapped[str] = mapped_column(String(100))
    vendor_code: Mapped[str | None] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(Text)
    brand: Mapped[str | None] = mapped_column(String(300))
    subject: Mapped[str | None] = mapped_column(String(300))
    photo_url: Mapped[str | None] = mapped_column(Text)
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")
    # The marketplace no longer lists it (Ozon: absent from the whole catalogue); None while on sale.
    archived_at: Mapped[datetime | None]


class Variant(IdMixin, TimestampMixin, TenantMixin, Base):
    __tablename__ = "variants"
    __table_args__ = (UniqueConstraint("connection_id", "external_id"),)

    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(100))
    size: Mapped[str | None] = mapped_column(String(100))
    marketplace_size: Mapped[str | None] = mapped_column(String(100))
    barcodes: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list, server_default="{}")


class StockLevel(TenantRowMixin, Base):
    """Current quantity per variant × warehouse. Unknown is NULL, never 0 (rule 5)."""

    __tablename__ = "stock_levels"
    __table_args__ = (Index("ix_stock_levels_connection_id", "connection_id"),)

    # In the database these two keys are not constraints (migration 0012): statement-level triggers on
    # variants and warehouses delete the rows of deleted ids, instead of a check per inserted row.
    variant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"), primary_key=True)
    warehouse_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("warehouses.id", ondelete="CASCADE"), primary_key=True)
    # Denormalised for reads; the variant's cascading key removes the row with its connection or product.
    connection_id: Mapped[uuid.UUID]
    product_id: Mapped[uuid.UUID] = mapped_column(index=True)
    quantity: Mapped[int]
    in_way_to_client: Mapped[int | None]
    in_way_from_client: Mapped[int | None]
    reserved: Mapped[int | None]
    changed_at: Mapped[datetime] = mapped_column(server_default=text("now()"))


class StockHistory(TenantRowMixin, Base):
    """A point per change (and per day), unique per sync run so a rerun writes nothing twice.

    Partitioned by month on ``at`` (migration 0010): keys include ``at`` (a write's points share its time),
    and a month past every plan's retention is dropped whole (docs/decisions.md, Retention).
    """

    __tablename__ = "stock_history"
    __table_args__ = (
        Index("ix_stock_history_variant_warehouse_at", "variant_id", "warehouse_id", "at"),
        Index("ix_stock_history_product_at", "product_id", "at"),
        UniqueConstraint("sync_run_id", "variant_id", "warehouse_id", "at"),
        {"postgresql_partition_by": "RANGE (at)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # Append-only: only the variant key cascades (it goes with its product and connection); the other ids
    # are references the writer resolved itself, checked there rather than per row.
    # Not a constraint in the database (migration 0012): a statement-level trigger on variants deletes them.
    variant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    warehouse_id: Mapped[uuid.UUID]
    product_id: Mapped[uuid.UUID]
    sync_run_id: Mapped[uuid.UUID | None]
    at: Mapped[datetime] = mapped_column(primary_key=True)
    quantity: Mapped[int]
    in_way_to_client: Mapped[int | None]
    in_way_from_client: Mapped[int | None]


class OrderLine(TenantRowMixin, Base):
    """One marketplace order line (WB: one ``srid``), stored raw so any figure can be recomputed."""

    __tablename__ = "order_lines"
    __table_args__ = (
        Index("ix_order_lines_product_date", "product_id", "order_date"),
        Index("ix_order_lines_connection_date", "connection_id", "order_date"),
    )

    # Not a constraint in the database (migration 0013): a statement-level trigger on connections deletes the
    # lines of deleted connections, instead of a check per inserted line.
    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    basket_id: Mapped[str | None] = mapped_column(String(200))
    # Resolved by the writer (the connection's key cascades the rows away); no per-row FK checks.
    product_id: Mapped[uuid.UUID | None]
    variant_id: Mapped[uuid.UUID | None]
    warehouse_id: Mapped[uuid.UUID | None]
    warehouse_name: Mapped[str | None] = mapped_column(String(300))
    ordered_at: Mapped[datetime]
    order_date: Mapped[date]  # the order's calendar day in Moscow time (how the cabinet counts)
    is_cancel: Mapped[bool]
    cancelled_at: Mapped[datetime | None]
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB)


class SyncRun(IdMixin, TimestampMixin, TenantMixin, Base):
    __tablename__ = "sync_runs"
    __table_args__ = (
        Index("ix_sync_runs_connection_created", "connection_id", "created_at"),
        Index("ix_sync_runs_lease_open", "lease_expires_at", postgresql_where=text("finished_at IS NULL")),
    )

    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(20))  # manual | scheduled
    status: Mapped[SyncStatus] = mapped_column(_enum(SyncStatus, "sync_status"), default=SyncStatus.QUEUED)
    job_id: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    stages: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(80))
    # waiting: when the run goes on and why it waits (a marketplace budget), never "queued".
    resume_at: Mapped[datetime | None]
    status_reason: Mapped[str | None] = mapped_column(Text)
    # A queued, waiting or running run past this moment is presumed dead (the sweep resumes it, or past
    # sync_max_resumes ends it "abandoned").
    lease_expires_at: Mapped[datetime | None]
    # Seconds this run has waited on marketplace limits, over all its jobs (capped by sync_max_wait_s).
    waited_seconds: Mapped[float] = mapped_column(default=0.0, server_default=text("0"))
    # Times the sweep resumed this run (same id, a fresh job) after its worker stopped; bounded by
    # sync_max_resumes, past which the run ends failed/abandoned.
    resumes: Mapped[int] = mapped_column(default=0, server_default=text("0"))
