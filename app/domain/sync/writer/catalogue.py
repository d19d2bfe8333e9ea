"""Catalogue and warehouses: products and variants by marketplace id (rule 6), stub variants for stock the
catalogue has not returned yet, and warehouses by marketplace id (rule 4)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.sync.model import CatalogItem, StockRow, VariantItem, WarehouseItem
from app.domain.sync.writer._copy import copy_into, raw_connection
from app.lib.ids import uuid7


async def write_catalog(
    session: AsyncSession, tenant_id: uuid.UUID, connection_id: uuid.UUID, marketplace: str, items: list[CatalogItem]
) -> tuple[int, int]:
    """Upsert products and their variants (identity: marketplace product id + variant id, rule 6); returns
    how many products and variants were inserted or changed."""
    raw = await raw_connection(session)
    products: dict[str, CatalogItem] = {i.external_id: i for i in items}
    await raw.execute(
        "CREATE TEMP TABLE tmp_products (id uuid, external_id text, vendor_code text, title text, brand text, "
        "subject text, photo_url text, search_text text) ON COMMIT DROP"
    )
    await copy_into(
        raw,
        "tmp_products",
        ["id", "external_id", "vendor_code", "title", "brand", "subject", "photo_url", "search_text"],
        (  # a generator: one row built at a time as the COPY sends, not 60 000 at once (~20 MB)
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
        ),
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
                search_text = EXCLUDED.search_text, archived_at = NULL, updated_at = now()
            -- A product listed again after it was archived is on sale again.
            WHERE (products.vendor_code, products.title, products.brand, products.subject, products.photo_url)
                  IS DISTINCT FROM
                  (EXCLUDED.vendor_code, EXCLUDED.title, EXCLUDED.brand, EXCLUDED.subject, EXCLUDED.photo_url)
               OR products.archived_at IS NOT NULL
            RETURNING 1
        ) SELECT count(*) FROM up
        """,
        tenant_id,
        connection_id,
        marketplace,
    )
    await raw.execute(
        "CREATE TEMP TABLE tmp_variants (id uuid, product_external_id text, external_id text, size text, "
        "marketplace_size text, barcodes text[]) ON COMMIT DROP"
    )
    variants = sorted(
        ((p.external_id, v) for p in products.values() for v in p.variants), key=lambda pv: pv[1].external_id
    )
    await copy_into(
        raw,
        "tmp_variants",
        ["id", "product_external_id", "external_id", "size", "marketplace_size", "barcodes"],
        ((uuid7(), pid, v.external_id, v.size, v.marketplace_size, v.barcodes) for pid, v in variants),
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
        tenant_id,
        connection_id,
    )
    return int(n_products), int(n_variants)


# $1 connection, $2 variant ids: those not stored. EXCEPT (a hashed or sorted set operation), not NOT EXISTS: the
# variants were written moments ago, with no statistics yet, so the planner took the connection's for a few rows
# and made the anti-join a nested loop comparing every id with every variant (525 825 comparisons for 1 026 ids;
# quadratic in the catalogue).
UNKNOWN_VARIANTS = (
    "SELECT v FROM unnest($2::text[]) AS v EXCEPT SELECT external_id FROM variants WHERE connection_id = $1"
)


async def ensure_stub_variants(
    session: AsyncSession, tenant_id: uuid.UUID, connection_id: uuid.UUID, marketplace: str, rows: list[StockRow]
) -> None:
    """Stock for a variant the catalogue has not returned (yet): keep it, under its marketplace ids."""
    if not rows:
        return
    raw = await raw_connection(session)
    # Only the variants not stored come back (usually none): not every stored id, and no stub built for
    # every row first (a large seller's 158 000 rows: ~30 MB of stubs and ids, nearly all thrown away).
    unknown = {
        rec["v"]
        for rec in await raw.fetch(
            UNKNOWN_VARIANTS,
            connection_id,
            sorted({r.variant_external_id for r in rows}),
        )
    }
    missing: dict[str, CatalogItem] = {}
    for r in rows:
        if r.variant_external_id not in unknown:
            continue
        item = missing.setdefault(r.product_external_id, CatalogItem(r.product_external_id, None, None))
        if all(v.external_id != r.variant_external_id for v in item.variants):
            item.variants.append(VariantItem(r.variant_external_id))
    if missing:
        # Products that exist keep their details: only the missing ones are inserted.
        await _insert_stubs(raw, tenant_id, connection_id, marketplace, list(missing.values()))


async def _insert_stubs(
    raw: Any, tenant_id: uuid.UUID, connection_id: uuid.UUID, marketplace: str, items: list[CatalogItem]
) -> None:
    for item in sorted(items, key=lambda i: i.external_id):
        await raw.execute(
            """INSERT INTO products (id, tenant_id, connection_id, marketplace, external_id, search_text,
                                     created_at, updated_at)
               VALUES ($1, $2, $3, $4::marketplace, $5::text, $5::text, now(), now())
               ON CONFLICT (connection_id, external_id) DO NOTHING""",
            uuid7(),
            tenant_id,
            connection_id,
            marketplace,
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
                tenant_id,
                connection_id,
                item.external_id,
                v.external_id,
            )


async def write_warehouses(
    session: AsyncSession, tenant_id: uuid.UUID, connection_id: uuid.UUID, warehouses: list[WarehouseItem]
) -> dict[str, uuid.UUID]:
    """Upsert warehouses by marketplace id (rule 4); returns every warehouse of the connection by that id."""
    raw = await raw_connection(session)
    # One pipelined round trip for all of them (asyncpg's executemany), in marketplace-id order.
    await raw.executemany(
        """INSERT INTO warehouses (id, tenant_id, connection_id, external_id, name, kind, region,
                                   created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6::warehouse_kind, $7, now(), now())
           ON CONFLICT (connection_id, external_id) DO UPDATE SET
               name = EXCLUDED.name, kind = EXCLUDED.kind, region = EXCLUDED.region, updated_at = now()
           WHERE (warehouses.name, warehouses.kind, warehouses.region)
                 IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.region)""",
        [
            (uuid7(), tenant_id, connection_id, wh.external_id, wh.name, wh.kind, wh.region)
            for wh in sorted(warehouses, key=lambda w: w.external_id)
        ],
    )
    rows = await raw.fetch("SELECT id, external_id FROM warehouses WHERE connection_id = $1", connection_id)
    return {r["external_id"]: r["id"] for r in rows}


def _search_text(p: CatalogItem) -> str:
    barcodes = " ".join(b for v in p.variants for b in v.barcodes)
    parts = [p.external_id, p.vendor_code or "", p.title or "", barcodes]
    return " ".join(x for x in parts if x).lower()
