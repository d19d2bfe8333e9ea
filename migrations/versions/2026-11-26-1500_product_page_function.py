"""the product page in one round trip: st_product_page(tenant, product) scopes RLS and reads the page

The function is SECURITY INVOKER: it runs as the calling application role, under row-level security. It
sets ``app.tenant_id`` for the statement's own transaction only (``set_config(…, true)``; called on its
own, the statement is its transaction) and then reads, so the page costs one round trip instead of BEGIN +
set_config, the query, and COMMIT. It refuses to run inside a transaction already scoped to another
tenant, so it can never widen or switch an existing scope. Every table is filtered by tenant as well.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 15:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

from app.db import rls

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAGE = "st_product_page(uuid, uuid)"


def upgrade() -> None:
    op.execute(
        """CREATE FUNCTION st_product_page(p_tenant uuid, p_product uuid)
        RETURNS TABLE (
            id uuid, connection_id uuid, marketplace text, external_id text, vendor_code text, title text,
            brand text, subject text, photo_url text, last_success_at timestamptz, low_units integer,
            variant_id uuid, variant_external_id text, size text, marketplace_size text, barcodes text[],
            warehouse_id uuid, warehouse_external_id text, warehouse_name text, kind text, quantity integer,
            in_way_to_client integer, in_way_from_client integer, reserved integer, changed_at timestamptz)
        LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = public AS $$
        #variable_conflict use_column
        BEGIN
            IF coalesce(current_setting('app.tenant_id', true), '') NOT IN ('', p_tenant::text) THEN
                RAISE EXCEPTION 'st_product_page: the transaction is scoped to another tenant'
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            PERFORM set_config('app.tenant_id', p_tenant::text, true);
            RETURN QUERY
            SELECT p.id, p.connection_id, p.marketplace::text, p.external_id::text, p.vendor_code::text, p.title,
                   p.brand::text, p.subject::text, p.photo_url, c.last_success_at,
                   (SELECT CASE WHEN r.enabled THEN r.units_below END FROM alert_rules r
                     WHERE r.tenant_id = p_tenant AND r.product_id IS NULL),
                   v.id, v.external_id::text, v.size::text, v.marketplace_size::text, v.barcodes::text[],
                   sw.warehouse_id, sw.warehouse_external_id, sw.warehouse_name, sw.kind, sw.quantity,
                   sw.in_way_to_client, sw.in_way_from_client, sw.reserved, sw.changed_at
              FROM products p
              JOIN connections c ON c.id = p.connection_id AND c.tenant_id = p_tenant
              LEFT JOIN variants v ON v.product_id = p.id AND v.tenant_id = p_tenant
              LEFT JOIN LATERAL (
                    SELECT s.warehouse_id, w.external_id::text AS warehouse_external_id, w.name::text AS warehouse_name,
                           w.kind::text AS kind, w.kind AS kind_order, w.id AS wid, s.quantity, s.in_way_to_client,
                           s.in_way_from_client, s.reserved, s.changed_at
                      FROM stock_levels s JOIN warehouses w ON w.id = s.warehouse_id AND w.tenant_id = p_tenant
                     WHERE s.variant_id = v.id AND s.tenant_id = p_tenant) sw ON true
             WHERE p.tenant_id = p_tenant AND p.id = p_product
             ORDER BY v.external_id, v.id, sw.kind_order, sw.warehouse_name, sw.wid;
        END
        $$"""
    )
    op.execute(f"REVOKE ALL ON FUNCTION {PAGE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {PAGE} TO {rls.APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {PAGE}")
