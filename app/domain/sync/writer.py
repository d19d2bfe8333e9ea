"""Writes a normalised snapshot: catalogue, warehouses, a full stock snapshot with history, order lines.

Everything goes through a temporary table filled with COPY (COPY straight into an RLS table is refused)
and one set-based INSERT … ON CONFLICT per table, sorted by key so two writers never deadlock, with an
``IS DISTINCT FROM`` guard so re-syncing identical data writes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.sync.model import CatalogItem, OrderItem, Snapshot, StockRow
from app.lib.ids import uuid7


@dataclass
class WriteCounts:
    products: int = 0
    variants: int = 0
    warehouses: int = 0
    stock_rows: int = 0
    changes: int = 0
    zeroed: int = 0
    history_points: int = 0
    orders: int = 0
    orders_written: int = 0
    unmatched_stock_rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


async def _raw(session: AsyncSession) -> Any:
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def _copy(raw: Any, table: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
    if records:
        await raw.copy_records_to_table(table, records=records, columns=columns)
    # Temporary tables have no statistics until analysed: without them the planner picks nested loops.
    await raw.execute(f"ANALYZE {table}")


class SnapshotWriter:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID, connection_id: uuid.UUID, marketplace: str):
        self.session = session
        self.tenant_id = tenant_id
        self.connection_id = connection_id
        self.marketplace = marketplace

    async def write_catalog(self, items: list[CatalogItem]) -> tuple[int, int]:
        """Upsert products and their variants (identity: marketplace product id + variant id, rule 6)."""
        raw = await _raw(self.session)
        products: dict[str, CatalogItem] = {i.external_id: i for i in items}
        await raw.execute(
            "CREATE TEMP TABLE tmp_products (id uuid, external_id text, vendor_code text, title text, brand text, "
            "subject text, photo_url text, search_text text) ON COMMIT DROP"
        )
        await _copy(
            raw,
            "tmp_products",
            ["id", "external_id", "vendor_code", "title", "brand", "subject", "photo_url", "search_text"],
            [
                (
                    uuid7(),
                    p.external_id,
                    p.vendor_code,
                    p.title,
                    p.brand,
                    p.subject,
                    p.photo_url,
                    _search_text(p),
                )
                for p in (products[k] for k in sorted(products))
            ],
        )
        n_products = await raw.fetchval(
            """
            WITH up AS (
                INSERT INTO products (id, tenant_id, connection_id, marketplace, external_id, vendor_code, title,
                                      brand, subject, photo_url, search_text, created_at, updated_at)
                SELECT t.id, $1, $2, $3::marketplace, t.external_id, t.vendor_code, t.title, t.brand, t.subject,
                       t.photo_url, t.search_text, now(), now()
                FROM tmp_products t ORDER BY t.external_id
                ON CONFLICT (connection_id, external_id) DO UPDATE SET
                    vendor_code = EXCLUDED.vendor_code, title = EXCLUDED.title, brand = EXCLUDED.brand,
                    subject = EXCLUDED.subject, photo_url = EXCLUDED.photo_url,
                    search_text = EXCLUDED.search_text, updated_at = now()
                WHERE (products.vendor_code, products.title, products.brand, products.subject, products.photo_url)
                      IS DISTINCT FROM
                      (EXCLUDED.vendor_code, EXCLUDED.title, EXCLUDED.brand, EXCLUDED.subject, EXCLUDED.photo_url)
                RETURNING 1
            ) SELECT count(*) FROM up
            """,
            self.tenant_id,
            self.connection_id,
            self.marketplace,
        )
        await raw.execute(
            "CREATE TEMP TABLE tmp_variants (id uuid, product_external_id text, external_id text, size text, "
            "marketplace_size text, barcodes text[]) ON COMMIT DROP"
        )
        variants = sorted(
            ((p.external_id, v) for p in products.values() for v in p.variants), key=lambda pv: pv[1].external_id
        )
        await _copy(
            raw,
            "tmp_variants",
            ["id", "product_external_id", "external_id", "size", "marketplace_size", "barcodes"],
            [(uuid7(), pid, v.external_id, v.size, v.marketplace_size, v.barcodes) for pid, v in variants],
        )
        n_variants = await raw.fetchval(
            """
            WITH up AS (
                INSERT INTO variants (id, tenant_id, connection_id, product_id, external_id, size, marketplace_size,
                                      barcodes, created_at, updated_at)
                SELECT t.id, $1, $2, p.id, t.external_id, t.size, t.marketplace_size, t.barcodes, now(), now()
                FROM tmp_variants t JOIN products p ON p.connection_id = $2 AND p.external_id = t.product_external_id
                ORDER BY t.external_id
                ON CONFLICT (connection_id, external_id) DO UPDATE SET
                    product_id = EXCLUDED.product_id, size = EXCLUDED.size,
                    marketplace_size = EXCLUDED.marketplace_size, barcodes = EXCLUDED.barcodes, updated_at = now()
                WHERE (variants.product_id, variants.size, variants.marketplace_size, variants.barcodes)
                      IS DISTINCT FROM
                      (EXCLUDED.product_id, EXCLUDED.size, EXCLUDED.marketplace_size, EXCLUDED.barcodes)
                RETURNING 1
            ) SELECT count(*) FROM up
            """,
            self.tenant_id,
            self.connection_id,
        )
        return int(n_products), int(n_variants)

    async def ensure_stub_variants(self, rows: list[StockRow]) -> None:
        """Stock for a variant the catalogue has not returned (yet): keep it, under its marketplace ids."""
        stubs: dict[str, CatalogItem] = {}
        for r in rows:
            item = stubs.setdefault(r.product_external_id, CatalogItem(r.product_external_id, None, None))
            if all(v.external_id != r.variant_external_id for v in item.variants):
                from app.domain.sync.model import VariantItem

                item.variants.append(VariantItem(r.variant_external_id))
        if not stubs:
            return
        raw = await _raw(self.session)
        known = {
            rec["external_id"]
            for rec in await raw.fetch(
                "SELECT external_id FROM variants WHERE connection_id = $1 AND external_id = ANY($2::text[])",
                self.connection_id,
                sorted({r.variant_external_id for r in rows}),
            )
        }
        missing: dict[str, CatalogItem] = {}
        for pid, item in stubs.items():
            new = [v for v in item.variants if v.external_id not in known]
            if new:
                missing[pid] = CatalogItem(pid, None, None, variants=new)
        if missing:
            # Products that exist keep their details: only the missing ones are inserted.
            await self._insert_stubs(list(missing.values()))

    async def _insert_stubs(self, items: list[CatalogItem]) -> None:
        raw = await _raw(self.session)
        for item in sorted(items, key=lambda i: i.external_id):
            await raw.execute(
                """INSERT INTO products (id, tenant_id, connection_id, marketplace, external_id, search_text,
                                         created_at, updated_at)
                   VALUES ($1, $2, $3, $4::marketplace, $5, $5, now(), now())
                   ON CONFLICT (connection_id, external_id) DO NOTHING""",
                uuid7(),
                self.tenant_id,
                self.connection_id,
                self.marketplace,
                item.external_id,
            )
            for v in item.variants:
                await raw.execute(
                    """INSERT INTO variants (id, tenant_id, connection_id, product_id, external_id, barcodes,
                                             created_at, updated_at)
                       SELECT $1, $2, $3, p.id, $5, '{}', now(), now() FROM products p
                       WHERE p.connection_id = $3 AND p.external_id = $4
                       ON CONFLICT (connection_id, external_id) DO NOTHING""",
                    uuid7(),
                    self.tenant_id,
                    self.connection_id,
                    item.external_id,
                    v.external_id,
                )

    async def write_warehouses(self, snapshot: Snapshot) -> dict[str, uuid.UUID]:
        raw = await _raw(self.session)
        for wh in sorted(snapshot.warehouses, key=lambda w: w.external_id):
            await raw.execute(
                """INSERT INTO warehouses (id, tenant_id, connection_id, external_id, name, kind, region,
                                           created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6::warehouse_kind, $7, now(), now())
                   ON CONFLICT (connection_id, external_id) DO UPDATE SET
                       name = EXCLUDED.name, kind = EXCLUDED.kind, region = EXCLUDED.region, updated_at = now()
                   WHERE (warehouses.name, warehouses.kind, warehouses.region)
                         IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.region)""",
                uuid7(),
                self.tenant_id,
                self.connection_id,
                wh.external_id,
                wh.name,
                wh.kind,
                wh.region,
            )
        rows = await raw.fetch("SELECT id, external_id FROM warehouses WHERE connection_id = $1", self.connection_id)
        return {r["external_id"]: r["id"] for r in rows}

    async def write_stock(self, snapshot: Snapshot, run_id: uuid.UUID, at: datetime, counts: WriteCounts) -> None:
        """Upsert the snapshot; absent rows of covered sources become 0 (rule 3); history only for changes."""
        raw = await _raw(self.session)
        await raw.execute(
            "CREATE TEMP TABLE tmp_stock (variant_external_id text, warehouse_external_id text, quantity int, "
            "in_way_to_client int, in_way_from_client int, reserved int) ON COMMIT DROP"
        )
        await _copy(
            raw,
            "tmp_stock",
            [
                "variant_external_id",
                "warehouse_external_id",
                "quantity",
                "in_way_to_client",
                "in_way_from_client",
                "reserved",
            ],
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
        counts.stock_rows = len(snapshot.stock)
        counts.unmatched_stock_rows = int(
            await raw.fetchval(
                """SELECT count(*) FROM tmp_stock t
                   LEFT JOIN variants v ON v.connection_id = $1 AND v.external_id = t.variant_external_id
                   WHERE v.id IS NULL""",
                self.connection_id,
            )
        )
        changed = await raw.fetchval(
            """
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
            ), hist AS (
                INSERT INTO stock_history (tenant_id, variant_id, warehouse_id, product_id, sync_run_id, at, quantity,
                                           in_way_to_client, in_way_from_client)
                SELECT $1, variant_id, warehouse_id, product_id, $3, $4, quantity, in_way_to_client, in_way_from_client
                FROM up
                ON CONFLICT (sync_run_id, variant_id, warehouse_id) DO NOTHING
                RETURNING 1
            ) SELECT count(*) FROM hist
            """,
            self.tenant_id,
            self.connection_id,
            run_id,
            at,
        )
        counts.changes = int(changed)
        # Rule 3: a successful read of a source is a full snapshot of it. Rows of its warehouses that it did
        # not report are zero now — but only for sources that answered completely.
        covered = await raw.fetch(
            """SELECT id FROM warehouses WHERE connection_id = $1
               AND ((kind = 'fbo' AND $2) OR (kind = 'fbs' AND external_id = ANY($3::text[])))""",
            self.connection_id,
            snapshot.covered_fbo,
            sorted(snapshot.covered_fbs),
        )
        covered_ids = [r["id"] for r in covered]
        zeroed = 0
        if covered_ids:
            zeroed = await raw.fetchval(
                """
                WITH missing AS (
                    -- Rows we hold for the covered warehouses, minus the rows this snapshot reported (a hashed
                    -- set difference, not a probe per row).
                    SELECT s.variant_id, s.warehouse_id FROM stock_levels s
                    WHERE s.connection_id = $2 AND s.warehouse_id = ANY($5::uuid[])
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
                ), hist AS (
                    INSERT INTO stock_history (tenant_id, variant_id, warehouse_id, product_id, sync_run_id, at,
                                               quantity, in_way_to_client, in_way_from_client)
                    SELECT $1, variant_id, warehouse_id, product_id, $3, $4, 0, 0, 0 FROM gone
                    ON CONFLICT (sync_run_id, variant_id, warehouse_id) DO NOTHING
                    RETURNING 1
                ) SELECT count(*) FROM hist
                """,
                self.tenant_id,
                self.connection_id,
                run_id,
                at,
                covered_ids,
            )
        counts.zeroed = int(zeroed)
        counts.history_points = counts.changes + counts.zeroed

    async def write_orders(self, orders: list[OrderItem], counts: WriteCounts) -> None:
        """Upsert raw order lines by their line id (WB srid); cancellations update the stored line."""
        raw = await _raw(self.session)
        await raw.execute(
            "CREATE TEMP TABLE tmp_orders (external_id text, basket_id text, product_external_id text, "
            "variant_external_id text, barcode text, warehouse_name text, warehouse_external_id text, "
            "ordered_at timestamptz, "
            "order_date date, is_cancel bool, cancelled_at timestamptz, raw jsonb) ON COMMIT DROP"
        )
        unique = {o.external_id: o for o in orders}
        await _copy(
            raw,
            "tmp_orders",
            [
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
            ],
            [
                (
                    o.external_id,
                    o.basket_id,
                    o.product_external_id,
                    o.variant_external_id,
                    o.barcode,
                    o.warehouse_name,
                    o.warehouse_external_id,
                    o.ordered_at,
                    o.order_date,
                    o.is_cancel,
                    o.cancelled_at,
                    msgspec.json.encode(o.raw).decode(),
                )
                for o in (unique[k] for k in sorted(unique))
            ],
        )
        counts.orders = len(unique)
        written = await raw.fetchval(
            """
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
                FROM src ORDER BY external_id
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
            """,
            self.tenant_id,
            self.connection_id,
        )
        counts.orders_written = int(written)


def _search_text(p: CatalogItem) -> str:
    barcodes = " ".join(b for v in p.variants for b in v.barcodes)
    parts = [p.external_id, p.vendor_code or "", p.title or "", barcodes]
    return " ".join(x for x in parts if x).lower()
