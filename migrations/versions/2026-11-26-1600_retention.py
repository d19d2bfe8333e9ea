"""retention: st_retention_sweep deletes what has outlived its use, in batches, across tenants

History is compacted, not dropped: past a tenant's plan retention only the last point of each variant ×
warehouse × day (in the tenant's time zone) is kept — the end-of-day stock that "stock by day" reads.
Events (with their webhook deliveries, attempts and notifications), suppressions, sync runs, order lines and
operational rows (alert-evaluation claims, Telegram updates and link codes, spent refresh tokens, relayed
outbox rows) are deleted after their periods. Nothing that is still pending is touched.

The function is SECURITY DEFINER, owned by the NOLOGIN system role, with DELETE (and the SELECT it needs)
granted and policed per table for that role only: the application role still cannot cross tenants.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 16:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

from app.db import rls

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SWEEP = "st_retention_sweep(integer, integer, integer, integer, text[], integer[], integer)"
# Tenant tables the sweep deletes from (row-level security on: a policy for the system role each).
TENANT_TABLES = [
    "events",
    "notification_suppressions",
    "alert_evaluations",
    "telegram_link_codes",
    "refresh_tokens",
    "sync_runs",
    "stock_history",
    "order_lines",
]
SYSTEM_TABLES = ["telegram_updates", "outbox"]  # no tenant, no row-level security


# The sweep's definition (migration 0011 replaces it, and restores this one on downgrade).
SWEEP_SQL = """CREATE FUNCTION st_retention_sweep(
            p_batch integer, p_event_days integer, p_ops_days integer, p_sync_run_days integer,
            p_plan_codes text[], p_plan_history_days integer[], p_default_history_days integer)
        RETURNS TABLE (target text, deleted bigint)
        LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$
        DECLARE
            n bigint;
            -- The shortest history retention of any plan: a constant bound the BRIN indexes can use.
            min_days integer := (SELECT min(d) FROM unnest(p_plan_history_days || p_default_history_days) d);
        BEGIN
            -- Events no delivery or notification still waits for (deliveries, attempts and notifications go
            -- with them: ON DELETE CASCADE).
            DELETE FROM events WHERE id IN (
                SELECT e.id FROM events e
                 WHERE e.created_at < now() - make_interval(days => p_event_days)
                   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id AND d.status = 'pending')
                   AND NOT EXISTS (SELECT 1 FROM notifications x
                                    WHERE x.event_id = e.id AND x.status IN ('pending', 'held'))
                 LIMIT p_batch);
            GET DIAGNOSTICS n = ROW_COUNT; target := 'events'; deleted := n; RETURN NEXT;

            DELETE FROM notification_suppressions WHERE id IN (
                SELECT id FROM notification_suppressions
                 WHERE created_at < now() - make_interval(days => p_event_days) LIMIT p_batch);
            GET DIAGNOSTICS n = ROW_COUNT; target := 'notification_suppressions'; deleted := n; RETURN NEXT;

            DELETE FROM alert_evaluations WHERE run_id IN (
                SELECT run_id FROM alert_evaluations
                 WHERE evaluated_at < now() - make_interval(days => p_ops_days) LIMIT p_batch);
            GET DIAGNOSTICS n = ROW_COUNT; target := 'alert_evaluations'; deleted := n; RETURN NEXT;

            DELETE FROM telegram_updates WHERE update_id IN (
                SELECT update_id FROM telegram_updates
                 WHERE received_at < now() - make_interval(days => p_ops_days) LIMIT p_batch);
            GET DIAGNOSTICS n = ROW_COUNT; target := 'telegram_updates'; deleted := n; RETURN NEXT;

            DELETE FROM telegram_link_codes WHERE id IN (
                SELECT id FROM telegram_link_codes WHERE expires_at < now() - interval '1 day' LIMIT p_batch);
            GET DIAGNOSTICS n = ROW_COUNT; target := 'telegram_link_codes'; deleted := n; RETURN NEXT;

            DELETE FROM refresh_tokens WHERE id IN (
                SELECT id FROM refresh_tokens
                 WHERE expires_at < now() - make_interval(days => p_ops_days) LIMIT p_batch);
            GET DIAGNOSTICS n = ROW_COUNT; target := 'refresh_tokens'; deleted := n; RETURN NEXT;

            DELETE FROM outbox WHERE id IN (
                SELECT id FROM outbox
                 WHERE enqueued_at IS NOT NULL AND enqueued_at < now() - make_interval(days => p_ops_days)
                 LIMIT p_batch);
            GET DIAGNOSTICS n = ROW_COUNT; target := 'outbox'; deleted := n; RETURN NEXT;

            DELETE FROM sync_runs WHERE id IN (
                SELECT id FROM sync_runs
                 WHERE created_at < now() - make_interval(days => p_sync_run_days)
                   AND status NOT IN ('queued', 'running')
                 LIMIT p_batch);
            GET DIAGNOSTICS n = ROW_COUNT; target := 'sync_runs'; deleted := n; RETURN NEXT;

            -- Order lines feed the 7/14/30-day velocities: kept at least 35 days, else as long as history.
            DELETE FROM order_lines WHERE (connection_id, external_id) IN (
                SELECT o.connection_id, o.external_id FROM order_lines o JOIN tenants t ON t.id = o.tenant_id
                 WHERE o.ordered_at < now() - make_interval(days => greatest(min_days, 35))
                   AND o.ordered_at < now() - make_interval(days => greatest(35, coalesce(
                         p_plan_history_days[array_position(p_plan_codes, t.plan)], p_default_history_days)))
                 LIMIT p_batch);
            GET DIAGNOSTICS n = ROW_COUNT; target := 'order_lines'; deleted := n; RETURN NEXT;

            -- History past the plan's retention: keep the last point of each variant x warehouse x local day.
            DELETE FROM stock_history WHERE id IN (
                SELECT h.id FROM stock_history h JOIN tenants t ON t.id = h.tenant_id
                 WHERE h.at < now() - make_interval(days => min_days)
                   AND h.at < now() - make_interval(days => coalesce(
                         p_plan_history_days[array_position(p_plan_codes, t.plan)], p_default_history_days))
                   AND EXISTS (
                        SELECT 1 FROM stock_history later
                         WHERE later.tenant_id = h.tenant_id
                           AND later.variant_id = h.variant_id AND later.warehouse_id = h.warehouse_id
                           AND later.at > h.at
                           AND later.at < (date_trunc('day', h.at AT TIME ZONE t.timezone) + interval '1 day')
                                          AT TIME ZONE t.timezone)
                 LIMIT p_batch);
            GET DIAGNOSTICS n = ROW_COUNT; target := 'stock_history'; deleted := n; RETURN NEXT;
        END
        $$"""


def upgrade() -> None:
    # Time-ordered, append-mostly tables: a BRIN index finds "older than" in a few pages.
    op.execute("CREATE INDEX ix_stock_history_at_brin ON stock_history USING brin (at)")
    op.execute("CREATE INDEX ix_order_lines_ordered_at_brin ON order_lines USING brin (ordered_at)")
    op.execute("CREATE INDEX ix_events_created_at_brin ON events USING brin (created_at)")
    for table in TENANT_TABLES:
        op.execute(f"GRANT SELECT, DELETE ON {table} TO {rls.SYSTEM_ROLE}")
        op.execute(f"CREATE POLICY system_retention_read ON {table} FOR SELECT TO {rls.SYSTEM_ROLE} USING (true)")
        op.execute(f"CREATE POLICY system_retention_delete ON {table} FOR DELETE TO {rls.SYSTEM_ROLE} USING (true)")
    for table in SYSTEM_TABLES:
        op.execute(f"GRANT SELECT, DELETE ON {table} TO {rls.SYSTEM_ROLE}")
    # What the sweep reads to decide: the tenant's plan and time zone, and what is still pending.
    op.execute(f"GRANT SELECT ON tenants, webhook_deliveries, notifications TO {rls.SYSTEM_ROLE}")
    for table in ("tenants", "webhook_deliveries", "notifications"):
        op.execute(f"CREATE POLICY system_retention_read ON {table} FOR SELECT TO {rls.SYSTEM_ROLE} USING (true)")
    op.execute(SWEEP_SQL)
    op.execute(f"ALTER FUNCTION {SWEEP} OWNER TO {rls.SYSTEM_ROLE}")
    op.execute(f"REVOKE ALL ON FUNCTION {SWEEP} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SWEEP} TO {rls.APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {SWEEP}")
    for table in ("tenants", "webhook_deliveries", "notifications", *TENANT_TABLES):
        op.execute(f"DROP POLICY IF EXISTS system_retention_read ON {table}")
    for table in TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS system_retention_delete ON {table}")
        op.execute(f"REVOKE DELETE ON {table} FROM {rls.SYSTEM_ROLE}")
    for table in SYSTEM_TABLES:
        op.execute(f"REVOKE DELETE ON {table} FROM {rls.SYSTEM_ROLE}")
    op.execute("DROP INDEX IF EXISTS ix_events_created_at_brin")
    op.execute("DROP INDEX IF EXISTS ix_order_lines_ordered_at_brin")
    op.execute("DROP INDEX IF EXISTS ix_stock_history_at_brin")
