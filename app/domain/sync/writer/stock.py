"""The stock snapshot: one sorted set-based upsert of every reported row, then rule 3 — a covered source's
rows that the snapshot no longer reports are zero now. Each statement writes its history points itself."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.sync.model import Snapshot
from app.domain.sync.writer._copy import copy_into, raw_connection
from app.domain.sync.writer.history import points_from

_COLUMNS = [
    "variant_external_id",
    "warehouse_external_id",
    "quantity",
    "in_way_to_client",
    "in_way_from_client",
    "reserved",
]

_UNMATCHED = """SELECT count(*) FROM tmp_stock t
   LEFT JOIN variants v ON v.connection_id = $1 AND v.external_id = t.variant_external_id
   WHERE v.id IS NULL"""

# $1 tenant, $2 connection, $3 sync run, $4 snapshot time.
_UPSERT = f"""
    WITH src AS (
        SELECT v.id AS variant_id, w.id AS warehouse_id, v.product_id, t.quantity, t.in_way_to_client,
               t.in_way_from_client, t.reserved
        FROM tmp_stock t
        JOIN variants v ON v.connection_id = $2 AND v.external_id = t.variant_external_id
        JOIN warehouses w ON w.connection_id = $2 AND w.external_id = t.warehouse_external_id
        ORDER BY v.id, w.id
    ), up AS (
        INSERT INTO stock_levels AS s (tenant_id, variant_id, warehouse_id, connection_id, product_id, quantity,
                                       in_way_to_client, in_way_from_client, reserved, changed_at)
        SELECT $1, variant_id, warehouse_id, $2, product_id, quantity, in_way_to_client, in_way_from_client,
               reserved, $4
        FROM src
        ON CONFLICT (variant_id, warehouse_id) DO UPDATE SET
            quantity = EXCLUDED.quantity, in_way_to_client = EXCLUDED.in_way_to_client,
            in_way_from_client = EXCLUDED.in_way_from_client, reserved = EXCLUDED.reserved,
            product_id = EXCLUDED.product_id, changed_at = EXCLUDED.changed_at
        WHERE (s.quantity, s.in_way_to_client, s.in_way_from_client, s.reserved, s.product_id)
              IS DISTINCT FROM (EXCLUDED.quantity, EXCLUDED.in_way_to_client, EXCLUDED.in_way_from_client,
                                EXCLUDED.reserved, EXCLUDED.product_id)
        RETURNING s.variant_id, s.warehouse_id, s.product_id, s.quantity, s.in_way_to_client,
                  s.in_way_from_client
    ), hist AS ({points_from("up")}
    ) SELECT count(*) FROM hist
"""

_COVERED = """SELECT id FROM warehouses WHERE connection_id = $1
   AND ((kind = 'fbo' AND $2) OR (kind = 'fbs' AND external_id = ANY($3::text[])))"""

# $1 tenant, $2 connection, $3 sync run, $4 snapshot time, $5 the covered warehouses, $6 the products kept.
_ZERO_ABSENT = f"""
    WITH missing AS (
        -- Rows we hold for the covered warehouses, minus the rows this snapshot reported (a hashed
        -- set difference, not a probe per row).
        SELECT s.variant_id, s.warehouse_id FROM stock_levels s
        WHERE s.connection_id = $2 AND s.warehouse_id = ANY($5::uuid[])
          -- Under a plan's product limit only the products this sync keeps are zeroed ($6 null: all).
          AND ($6::text[] IS NULL OR s.product_id IN (
               SELECT p.id FROM products p WHERE p.connection_id = $2 AND p.external_id = ANY($6::text[])))
          AND (s.quantity <> 0 OR coalesce(s.in_way_to_client, 0) <> 0
               OR coalesce(s.in_way_from_client, 0) <> 0 OR coalesce(s.reserved, 0) <> 0)
        EXCEPT
        SELECT v.id, w.id FROM tmp_stock t
        JOIN variants v ON v.connection_id = $2 AND v.external_id = t.variant_external_id
        JOIN warehouses w ON w.connection_id = $2 AND w.external_id = t.warehouse_external_id
    ), gone AS (
        UPDATE stock_levels s SET quantity = 0,
            in_way_to_client = CASE WHEN s.in_way_to_client IS NULL THEN NULL ELSE 0 END,
            in_way_from_client = CASE WHEN s.in_way_from_client IS NULL THEN NULL ELSE 0 END,
            reserved = CASE WHEN s.reserved IS NULL THEN NULL ELSE 0 END,
            changed_at = $4
        FROM missing m
        WHERE s.variant_id = m.variant_id AND s.warehouse_id = m.warehouse_id
        RETURNING s.variant_id, s.warehouse_id, s.product_id
    ), hist AS ({points_from("gone", "0, 0, 0")}
    ) SELECT count(*) FROM hist
"""


@dataclass(frozen=True, slots=True)
class StockWrite:
    stock_rows: int  # rows the snapshot reported
    unmatched: int  # rows naming a variant we do not hold (not written)
    changes: int  # rows inserted or changed, each with a history point
    zeroed: int  # rows of covered sources no longer reported, now zero, each with a history point


async def write_stock(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    connection_id: uuid.UUID,
    snapshot: Snapshot,
    run_id: uuid.UUID,
    at: datetime,
) -> StockWrite:
    """Upsert the snapshot; absent rows of covered sources become 0 (rule 3); history only for changes."""
    raw = await raw_connection(session)
    await raw.execute(
        "CREATE TEMP TABLE tmp_stock (variant_external_id text, warehouse_external_id text, quantity int, "
        "in_way_to_client int, in_way_from_client int, reserved int) ON COMMIT DROP"
    )
    await copy_into(
        raw,
        "tmp_stock",
        _COLUMNS,
        [
            (
                r.variant_external_id,
                r.warehouse_external_id,
                r.quantity,
                r.in_way_to_client,
                r.in_way_from_client,
                r.reserved,
            )
            for r in snapshot.stock
        ],
    )
    unmatched = int(await raw.fetchval(_UNMATCHED, connection_id))
    changed = int(await raw.fetchval(_UPSERT, tenant_id, connection_id, run_id, at))
    # Rule 3: a successful read of a source is a full snapshot of it. Rows of its warehouses that it did
    # not report are zero now — but only for sources that answered completely.
    covered = await raw.fetch(_COVERED, connection_id, snapshot.covered_fbo, sorted(snapshot.covered_fbs))
    covered_ids = [r["id"] for r in covered]
    zeroed = 0
    if covered_ids:
        limited = sorted(snapshot.limited_to) if snapshot.limited_to is not None else None
        zeroed = int(await raw.fetchval(_ZERO_ABSENT, tenant_id, connection_id, run_id, at, covered_ids, limited))
    return StockWrite(len(snapshot.stock), unmatched, changed, zeroed)
