"""Reconciliations: the cabinet's own export beside our figures, stored, with a summary."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

import msgspec

RowStatus = Literal["matched", "only_theirs", "only_ours"]
PeriodSource = Literal["file", "form", "default"]


class ReconciliationSummary(msgspec.Struct):
    """``rows_with_difference``: matched rows whose stock or orders differ; ``total_abs_difference``: the sum
    over every row of |our stock − their stock| in units (a side without the row counts as 0)."""

    rows_matched: int
    rows_only_theirs: int
    rows_only_ours: int
    rows_with_difference: int
    total_abs_difference: int


class ReconciliationPeriod(msgspec.Struct):
    """The days whose orders are compared (the file's own period, else the form's, else the 7 days to today)."""

    date_from: date = msgspec.field(name="from")
    date_to: date = msgspec.field(name="to")
    source: PeriodSource = "file"


class Reconciliation(msgspec.Struct):
    id: uuid.UUID
    connection_id: uuid.UUID
    file_name: str
    format: str
    file_bytes: int
    period: ReconciliationPeriod
    rows_total: int
    pseudo_rows_skipped: int
    summary: ReconciliationSummary
    matching: str
    created_at: datetime


class ReconciliationPage(msgspec.Struct):
    items: list[Reconciliation]
    next_cursor: str | None = None


class ReconciliationLine(msgspec.Struct):
    """One article × size × warehouse. Differences are ours − theirs; percentages are of theirs (null when
    theirs is 0 and ours is not). ``line``: the file's line (null for rows only we have)."""

    position: int
    status: RowStatus
    line: int | None
    external_id: str
    vendor_code: str | None
    title: str | None
    size: str
    warehouse: str
    product_id: uuid.UUID | None
    variant_id: uuid.UUID | None
    their_stock: int | None
    our_stock: int | None
    stock_difference: int | None
    stock_difference_pct: float | None
    their_orders: int | None
    our_orders: int | None
    orders_difference: int | None
    orders_difference_pct: float | None
    note: str | None


class ReconciliationLinePage(msgspec.Struct):
    items: list[ReconciliationLine]
    next_cursor: str | None = None
