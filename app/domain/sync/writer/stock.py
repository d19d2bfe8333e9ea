"""The stock snapshot: one sorted set-based upsert of every reported row, then rule 3 — a covered source's
rows that the snapshot no longer reports are zero now. Each statement writes its history points itself.

A history point is written where a value the point stores (quantity, in transit to / from customers)
changed, or the row is new — not where only a field the point does not store changed (Ozon's ``reserved``
moves with every pending order: a point there repeated the previous value). The row itself is still
updated, so ``stock_levels`` always holds what the marketplace said last.

A connection's first snapshot (no stock row stored yet, no point of this run at this time) takes a plain
``INSERT`` for its rows and for their history points — nothing can conflict (the per-connection sync lock keeps
a second writer out) and nothing is absent — which skips the speculative insertion of ``ON CONFLICT`` and the
absent-rows pass (``bench/sync.py`` shows the difference).
"""

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

# Whether the connection holds stock rows, or this run already wrote points at this time (a rerun of a run
# whose rows were removed since — contrived, but then the plain insert of ``_INSERT_FIRST`` would conflict).
# $1 connection, $2 sync run, $3 snapshot time.
_HELD = """SELECT EXISTS (SELECT 1 FROM stock_levels WHERE connection_id = $1)
   OR EXISTS (SELECT 1 FROM stock_history WHERE sync_run_id = $2 AND at = $3)"""

# The snapshot's rows by our ids. The enclosing statement binds $2 = connection.
_SRC = """
    src AS (
        SELECT v.id AS variant_id, w.id AS warehouse_id, v.product_id, t.quantity, t.in_way_to_client,
               t.in_way_from_client, t.reserved
        FROM tmp_stock t
        JOIN variants v ON v.connection_id = $2 AND v.external_id = t.variant_external_id
        JOIN warehouses w ON w.connection_id = $2 AND w.external_id = t.warehouse_external_id
        ORDER BY v.id, w.id
    )"""

# $1 tenant, $2 connection, $3 sync run, $4 snapshot time → (rows written, history points).
# ``moved``: new rows, and rows whose stored point values differ (read before this statement's update: every
# CTE sees the same snapshot). Those rows are a subset of the ones ``up`` changes.
_UPSERT = f"""
    WITH {_SRC}, prev AS (
        SELECT src.*, c.variant_id IS NULL AS is_new, c.quantity AS old_quantity,
               c.in_way_to_client AS old_to_client, c.in_way_from_client AS old_from_client
        FROM src LEFT JOIN stock_levels c
          ON c.connection_id = $2 AND c.variant_id = src.variant_id AND c.warehouse_id = src.warehouse_id
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
        RETURNING 1
    ), moved AS (
        SELECT variant_id, warehouse_id, product_id, quantity, in_way_to_client, in_way_from_client FROM prev
        WHERE is_new OR (old_quantity, old_to_client, old_from_client)
                        IS DISTINCT FROM (quantity, in_way_to_client, in_way_from_client)
    ), hist AS ({points_from("moved")}
    ) SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM hist)
"""

# The first snapshot of a connection: every row is new, every row gets its point; nothing held conflicts.
_INSERT_FIRST = f"""
    WITH {_SRC}, up AS (
        INSERT INTO stock_levels (tenant_id, variant_id, warehouse_id, connection_id, product_id, quantity,
                                  in_way_to_client, in_way_from_client, reserved, changed_at)
        SELECT $1, variant_id, warehouse_id, $2, product_id, quantity, in_way_to_client, in_way_from_client,
               reserved, $4
        FROM src
        RETURNING 1
    ), hist AS ({points_from("src", none_held=True)}
    ) SELECT (SELECT count(*) FROM up), (SELECT count(*) FROM hist)
"""

_COVERED = """SELECT id FROM warehouses WHERE connection_id = $1
   AND ((kind = 'fbo' AND $2) OR (kind = 'fbs' AND external_id = ANY($3::text[])))"""

# The tail both statements below share: the rows of ``prev`` (variant, warehouse, ``moves``: whether the
# quantity or a known in-transit figure was not 0) become 0 — an unknown (NULL) figure stays unknown — and
# those whose point's values move get a history point. Defines the CTEs ``gone`` and ``hist``.
_ZEROED_WITH_POINTS = f"""gone AS (
        UPDATE stock_levels s SET quantity = 0,
            in_way_to_client = CASE WHEN s.in_way_to_client IS NULL THEN NULL ELSE 0 END,
            in_way_from_client = CASE WHEN s.in_way_from_client IS NULL THEN NULL ELSE 0 END,
            reserved = CASE WHEN s.reserved IS NULL THEN NULL ELSE 0 END,
            changed_at = $4
        FROM prev m
        WHERE s.variant_id = m.variant_id AND s.warehouse_id = m.warehouse_id
        RETURNING s.variant_id, s.warehouse_id, s.product_id, s.quantity, s.in_way_to_client,
                  s.in_way_from_client
    ), moved AS (
        SELECT g.* FROM gone g JOIN prev p USING (variant_id, warehouse_id) WHERE p.moves
    ), hist AS ({points_from("moved")})"""

# $1 tenant, $2 connection, $3 sync run, $4 snapshot time, $5 the covered warehouses, $6 the products kept
# → (rows zeroed, history points). A zeroed row keeps an unknown (NULL) in-transit figure unknown — in
# stock_levels and in its point — and gets a point only when the quantity or a known in-transit figure
# was not already 0 (a row that only had units reserved changes, but its point would repeat the last one).
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
    ), prev AS (
        SELECT s.variant_id, s.warehouse_id,
               s.quantity <> 0 OR coalesce(s.in_way_to_client, 0) <> 0
               OR coalesce(s.in_way_from_client, 0) <> 0 AS moves
        FROM stock_levels s JOIN missing m ON s.variant_id = m.variant_id AND s.warehouse_id = m.warehouse_id
        WHERE s.connection_id = $2
    ), {_ZEROED_WITH_POINTS}
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM hist)
"""


# $1 tenant, $2 connection, $3 sync run, $4 snapshot time, $5 every product the full catalogue listed
# → (products archived now, history points). Products we hold that a full catalogue no longer lists are
# archived; every row of theirs still holding units becomes 0 (with a point where the point's values move).
_ARCHIVE = f"""
    WITH archived AS (
        UPDATE products p SET archived_at = $4, updated_at = now()
        WHERE p.connection_id = $2 AND p.archived_at IS NULL AND NOT (p.external_id = ANY($5::text[]))
        RETURNING p.id
    ), prev AS (
        SELECT s.variant_id, s.warehouse_id,
               s.quantity <> 0 OR coalesce(s.in_way_to_client, 0) <> 0
               OR coalesce(s.in_way_from_client, 0) <> 0 AS moves
        FROM stock_levels s JOIN archived a ON a.id = s.product_id
        WHERE s.connection_id = $2
          AND (s.quantity <> 0 OR coalesce(s.in_way_to_client, 0) <> 0
               OR coalesce(s.in_way_from_client, 0) <> 0 OR coalesce(s.reserved, 0) <> 0)
    ), {_ZEROED_WITH_POINTS}
    SELECT (SELECT count(*) FROM archived), (SELECT count(*) FROM hist)
"""


@dataclass(frozen=True, slots=True)
class StockWrite:
    stock_rows: int  # rows the snapshot reported
    unmatched: int  # rows naming a variant we do not hold (not written)
    changes: int  # rows inserted or changed
    zeroed: int  # rows of covered sources no longer reported, now zero
    history_points: int = 0  # points written: rows whose quantity or in-transit figures moved
    archived: int = 0  # products a full catalogue no longer lists, archived by this write


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
    listed = listed_products(snapshot)
    rows = snapshot.stock if listed is None else [r for r in snapshot.stock if r.product_external_id in listed]
    # The snapshot's sort and hash joins fit in memory instead of spilling to disk; and no nested loops: a
    # table that just grew (a first sync's variants and stock rows) has no statistics yet, the planner
    # takes it for a few rows and joins the snapshot to it row by row — a resync of 158 000 rows ran for
    # minutes. Hash joins are linear whatever the estimates. (This transaction only; reset below.)
    await raw.execute("SET LOCAL work_mem = '64MB'; SET LOCAL enable_nestloop = off")
    await raw.execute(
        "CREATE TEMP TABLE tmp_stock (variant_external_id text, warehouse_external_id text, quantity int, "
        "in_way_to_client int, in_way_from_client int, reserved int) ON COMMIT DROP"
    )
    await copy_into(
        raw,
        "tmp_stock",
        _COLUMNS,
        (
            (
                r.variant_external_id,
                r.warehouse_external_id,
                r.quantity,
                r.in_way_to_client,
                r.in_way_from_client,
                r.reserved,
            )
            for r in rows
        ),
    )
    unmatched = int(await raw.fetchval(_UNMATCHED, connection_id))
    first = not await raw.fetchval(_HELD, connection_id, run_id, at)
    changed, points = await raw.fetchrow(_INSERT_FIRST if first else _UPSERT, tenant_id, connection_id, run_id, at)
    zeroed = zero_points = 0
    if not first:
        # Rule 3: a successful read of a source is a full snapshot of it. Rows of its warehouses that it did
        # not report are zero now — but only for sources that answered completely. (A first snapshot has
        # no other rows.)
        covered = await raw.fetch(_COVERED, connection_id, snapshot.covered_fbo, sorted(snapshot.covered_fbs))
        covered_ids = [r["id"] for r in covered]
        if covered_ids:
            limited = sorted(snapshot.limited_to) if snapshot.limited_to is not None else None
            zeroed, zero_points = await raw.fetchrow(
                _ZERO_ABSENT, tenant_id, connection_id, run_id, at, covered_ids, limited
            )
    archived = archive_points = 0
    if listed is not None:
        archived, archive_points = await raw.fetchrow(_ARCHIVE, tenant_id, connection_id, run_id, at, sorted(listed))
    await raw.execute("SET LOCAL enable_nestloop = on")
    points = int(points) + int(zero_points) + int(archive_points)
    return StockWrite(len(snapshot.stock), unmatched, int(changed), int(zeroed), points, int(archived))


def listed_products(snapshot: Snapshot) -> set[str] | None:
    """The products a full catalogue listed (Ozon): stored products outside it are archived and their stock
    rows are not written. None when the catalogue cannot say that: it lists changes only (Wildberries), it
    failed, a plan's product limit cut it, or it came back empty (an empty answer never deletes data)."""
    if not (snapshot.catalogue_full and snapshot.catalogue_complete and snapshot.catalog):
        return None
    if snapshot.limited_to is not None:
        return None
    return {c.external_id for c in snapshot.catalog}
