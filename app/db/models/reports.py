"""Reports: the organization's report settings, per-product restock settings, Google Sheets links and stored
reconciliations with the marketplace cabinet's export."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import CheckConstraint, Double, ForeignKey, Index, LargeBinary, String, Text, Time, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from app.db.base import Base, IdMixin, TenantMixin, TenantRowMixin, TimestampMixin


class ReportSettings(TimestampMixin, Base):
    """One row per organization (absent = the defaults): report language, the daily report, restock targets."""

    __tablename__ = "report_settings"
    __tenant_scoped__ = True
    __table_args__ = (
        CheckConstraint("locale IN ('ru', 'en')", name="locale"),
        CheckConstraint("report_window_days IN (7, 14, 30)", name="window"),
        CheckConstraint("lead_time_days BETWEEN 0 AND 365 AND safety_days BETWEEN 0 AND 365", name="days"),
    )

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)

    locale: Mapped[str] = mapped_column(String(5), default="ru", server_default="ru")
    # Wall-clock time in the organization's time zone; NULL = no daily report.
    daily_report_time: Mapped[time | None] = mapped_column(Time)
    report_window_days: Mapped[int] = mapped_column(default=30, server_default=text("30"))
    lead_time_days: Mapped[int] = mapped_column(default=14, server_default=text("14"))
    safety_days: Mapped[int] = mapped_column(default=7, server_default=text("7"))
    # The local date of the last daily report sent (claimed in the job's transaction: one per day).
    last_daily_report_on: Mapped[date | None]


class RestockOverride(TimestampMixin, TenantMixin, Base):
    """A product's own lead time and/or safety days (NULL = the organization's)."""

    __tablename__ = "restock_overrides"
    __table_args__ = (
        CheckConstraint("lead_time_days BETWEEN 0 AND 365 AND safety_days BETWEEN 0 AND 365", name="days"),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), primary_key=True)
    lead_time_days: Mapped[int | None]
    safety_days: Mapped[int | None]


class SheetLink(IdMixin, TimestampMixin, TenantMixin, Base):
    """A Google Sheet the stock report is written to after each successful sync and on demand."""

    __tablename__ = "sheet_links"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'invalid')", name="status"),
        CheckConstraint("per IN ('product', 'size')", name="per"),
    )

    spreadsheet_id: Mapped[str] = mapped_column(String(200))
    sheet_name: Mapped[str] = mapped_column(String(100))
    # The uploaded service-account key file, encrypted with the credential cipher (like marketplace tokens).
    credentials_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    client_email: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(12), default="active", server_default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(5))
    window_days: Mapped[int | None]
    per: Mapped[str] = mapped_column(String(10), default="product", server_default="product")
    connection_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    last_push_at: Mapped[datetime | None]
    last_push_status: Mapped[str | None] = mapped_column(String(20))
    last_push_rows: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class Reconciliation(IdMixin, TimestampMixin, TenantMixin, Base):
    """One uploaded cabinet export compared with our figures; its rows are ``ReconciliationRow``."""

    __tablename__ = "reconciliations"
    __table_args__ = (Index("ix_reconciliations_tenant_created", "tenant_id", "created_at"),)

    connection_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    created_by: Mapped[uuid.UUID | None]
    file_name: Mapped[str] = mapped_column(String(300))
    file_format: Mapped[str] = mapped_column(String(10))
    file_bytes: Mapped[int]
    period_start: Mapped[date]
    period_end: Mapped[date]
    period_source: Mapped[str] = mapped_column(String(10))
    rows_total: Mapped[int]
    pseudo_rows_skipped: Mapped[int]
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class ReconciliationRow(TenantRowMixin, Base):
    """One article × size × warehouse: their figures (the file) beside ours, and the differences."""

    __tablename__ = "reconciliation_rows"
    __table_args__ = (CheckConstraint("status IN ('matched', 'only_theirs', 'only_ours')", name="status"),)

    reconciliation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reconciliations.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(12))
    line: Mapped[int | None]
    external_id: Mapped[str] = mapped_column(String(100))
    vendor_code: Mapped[str | None] = mapped_column(String(300))
    title: Mapped[str | None] = mapped_column(Text)
    size: Mapped[str] = mapped_column(String(100))
    warehouse: Mapped[str] = mapped_column(String(300))
    product_id: Mapped[uuid.UUID | None]
    variant_id: Mapped[uuid.UUID | None]
    their_stock: Mapped[int | None]
    our_stock: Mapped[int | None]
    stock_difference: Mapped[int | None]
    stock_difference_pct: Mapped[float | None] = mapped_column(Double)
    their_orders: Mapped[int | None]
    our_orders: Mapped[int | None]
    orders_difference: Mapped[int | None]
    orders_difference_pct: Mapped[float | None] = mapped_column(Double)
    note: Mapped[str | None] = mapped_column(Text)


__all__ = ["Reconciliation", "ReconciliationRow", "ReportSettings", "RestockOverride", "SheetLink"]
