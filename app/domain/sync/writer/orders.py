"""Order lines, stored raw by their line id (WB ``srid``): the source of sales velocity and days of cover,
which are computed from these rows when read, so any figure can be recomputed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.sync.model import OrderLines
from app.domain.sync.writer._copy import copy_into, raw_connection

_COLUMNS = [
    "external_id",
    "basket_id",
    "product_external_id",
    "variant_external_id",
    "barcode",
    "warehouse_name",
    "warehouse_external_id",
    "ordered_at",
    "order_date",
    "is_cancel",
    "cancelled_at",
    "raw",
]

# $1 tenant, $2 connection.
_SOURCE = """
    WITH by_barcode AS (
        SELECT DISTINCT ON (b.barcode) b.barcode, b.id FROM (
            SELECT v.id, unnest(v.barcodes) AS barcode FROM variants v WHERE v.connection_id = $2
        ) b ORDER BY b.barcode, b.id
    ), by_size AS (
        SELECT DISTINCT ON (v.product_id, v.size) v.product_id, v.size, v.id
        FROM variants v WHERE v.connection_id = $2 AND v.size IS NOT NULL
        ORDER BY v.product_id, v.size, v.id
    ), src AS (
        -- An order line names its size by barcode (and tech size), not by variant id: resolve it by
        -- hash joins over the connection's variants, never a scan per line.
        SELECT t.*, p.id AS product_id, coalesce(v1.id, bb.id, bs.id) AS variant_id, w.id AS warehouse_id
        FROM tmp_orders t
        LEFT JOIN products p ON p.connection_id = $2 AND p.external_id = t.product_external_id
        LEFT JOIN variants v1 ON v1.connection_id = $2 AND v1.external_id = t.variant_external_id
        LEFT JOIN by_barcode bb ON bb.barcode = t.barcode
        LEFT JOIN by_size bs ON bs.product_id = p.id AND bs.size = t.raw->>'techSize'
        LEFT JOIN warehouses w ON w.connection_id = $2 AND w.external_id = t.warehouse_external_id
    ), up AS (
        INSERT INTO order_lines AS o (tenant_id, connection_id, external_id, basket_id, product_id, variant_id,
            warehouse_id, warehouse_name, ordered_at, order_date, is_cancel, cancelled_at, raw)
        SELECT $1, $2, external_id, basket_id, product_id, variant_id, warehouse_id, warehouse_name,
               ordered_at, order_date, is_cancel, cancelled_at, raw
        -- No ORDER BY: a sort here spilled the whole width of the raw lines to disk (150 000 lines: ~150 MB,
        -- a third of the statement), and none is needed against deadlocks: two writers of one connection
        -- never run at once (the per-connection sync lock), and connections share no keys. The rows arrive
        -- in the order they were fetched, each line id once (``OrderLines`` keeps the latest copy).
        FROM src
"""

_UPSERT = (
    _SOURCE
    + """
        ON CONFLICT (connection_id, external_id) DO UPDATE SET
            is_cancel = EXCLUDED.is_cancel, cancelled_at = EXCLUDED.cancelled_at, raw = EXCLUDED.raw,
            product_id = EXCLUDED.product_id, variant_id = EXCLUDED.variant_id,
            warehouse_id = EXCLUDED.warehouse_id
        WHERE (o.is_cancel, o.cancelled_at, o.raw->>'lastChangeDate', o.product_id, o.variant_id,
               o.warehouse_id)
              IS DISTINCT FROM (EXCLUDED.is_cancel, EXCLUDED.cancelled_at, EXCLUDED.raw->>'lastChangeDate',
                                EXCLUDED.product_id, EXCLUDED.variant_id, EXCLUDED.warehouse_id)
        RETURNING 1
    ) SELECT count(*) FROM up
"""
)

# A connection's first order lines (none stored yet): nothing can conflict, so a plain INSERT — no
# speculative insertion per line (~15 % of the statement). The per-connection sync lock keeps it so.
_INSERT_FIRST = (
    _SOURCE
    + """
        RETURNING 1
    ) SELECT count(*) FROM up
"""
)

_HAS_LINES = "SELECT EXISTS (SELECT 1 FROM order_lines WHERE connection_id = $1)"

# The columns the upsert joins on: ANALYZE skips the raw lines (jsonb statistics cost a fifth of it).
_ANALYZE = ["external_id", "product_external_id", "variant_external_id", "barcode", "warehouse_external_id"]


@dataclass(frozen=True, slots=True)
class OrdersWrite:
    orders: int  # distinct order lines received
    written: int  # lines inserted or changed (a cancellation updates the stored line)


async def write_orders(
    session: AsyncSession, tenant_id: uuid.UUID, connection_id: uuid.UUID, orders: OrderLines
) -> OrdersWrite:
    """Upsert raw order lines by their line id (WB srid); cancellations update the stored line. The lines are
    read from their compressed chunks as the COPY sends them: one chunk of them decoded at a time."""
    raw = await raw_connection(session)
    await raw.execute(
        "CREATE TEMP TABLE tmp_orders (external_id text, basket_id text, product_external_id text, "
        "variant_external_id text, barcode text, warehouse_name text, warehouse_external_id text, "
        "ordered_at timestamptz, "
        "order_date date, is_cancel bool, cancelled_at timestamptz, raw jsonb) ON COMMIT DROP"
    )
    # One COPY, the rows built one at a time as asyncpg sends them (a line's raw JSON is text only while sent).
    await copy_into(raw, "tmp_orders", _COLUMNS, orders.copy_rows(), analyze=_ANALYZE)
    first = not await raw.fetchval(_HAS_LINES, connection_id)
    written = await raw.fetchval(_INSERT_FIRST if first else _UPSERT, tenant_id, connection_id)
    return OrdersWrite(len(orders), int(written))
