"""reports: report settings, restock overrides, Google Sheets links, reconciliations; RLS; daily-report function

Tenant tables behind FORCE row-level security like the others. ``st_due_daily_reports`` (SECURITY DEFINER,
owned by the NOLOGIN system role) is the one cross-tenant read: which organizations' daily report is due.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 04:22:05.494102+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db import rls

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ["report_settings", "restock_overrides", "sheet_links", "reconciliations", "reconciliation_rows"]
DUE = "st_due_daily_reports(timestamptz)"


def upgrade() -> None:
    op.create_table(
        "report_settings",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("locale", sa.String(length=5), server_default="ru", nullable=False),
        sa.Column("daily_report_time", sa.Time(), nullable=True),
        sa.Column("report_window_days", sa.Integer(), server_default=sa.text("30"), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), server_default=sa.text("14"), nullable=False),
        sa.Column("safety_days", sa.Integer(), server_default=sa.text("7"), nullable=False),
        sa.Column("last_daily_report_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("locale IN ('ru', 'en')", name=op.f("ck_report_settings_locale")),
        sa.CheckConstraint(
            "lead_time_days BETWEEN 0 AND 365 AND safety_days BETWEEN 0 AND 365", name=op.f("ck_report_settings_days")
        ),
        sa.CheckConstraint("report_window_days IN (7, 14, 30)", name=op.f("ck_report_settings_window")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_report_settings_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_report_settings")),
    )
    op.create_table(
        "reconciliations",
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("created_by", sa.UUID(), nullable=True),
        sa.Column("file_name", sa.String(length=300), nullable=False),
        sa.Column("file_format", sa.String(length=10), nullable=False),
        sa.Column("file_bytes", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("period_source", sa.String(length=10), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("pseudo_rows_skipped", sa.Integer(), nullable=False),
        sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_reconciliations_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_reconciliations_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliations")),
    )
    op.create_index("ix_reconciliations_tenant_created", "reconciliations", ["tenant_id", "created_at"], unique=False)
    op.create_index(op.f("ix_reconciliations_tenant_id"), "reconciliations", ["tenant_id"], unique=False)
    op.create_table(
        "sheet_links",
        sa.Column("spreadsheet_id", sa.String(length=200), nullable=False),
        sa.Column("sheet_name", sa.String(length=100), nullable=False),
        sa.Column("credentials_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("client_email", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=12), server_default="active", nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("lang", sa.String(length=5), nullable=True),
        sa.Column("window_days", sa.Integer(), nullable=True),
        sa.Column("per", sa.String(length=10), server_default="product", nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=True),
        sa.Column("last_push_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_push_status", sa.String(length=20), nullable=True),
        sa.Column("last_push_rows", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.CheckConstraint("per IN ('product', 'size')", name=op.f("ck_sheet_links_per")),
        sa.CheckConstraint("status IN ('active', 'invalid')", name=op.f("ck_sheet_links_status")),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_sheet_links_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_sheet_links_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sheet_links")),
    )
    op.create_index(op.f("ix_sheet_links_tenant_id"), "sheet_links", ["tenant_id"], unique=False)
    op.create_table(
        "reconciliation_rows",
        sa.Column("reconciliation_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("vendor_code", sa.String(length=300), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("size", sa.String(length=100), nullable=False),
        sa.Column("warehouse", sa.String(length=300), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=True),
        sa.Column("variant_id", sa.UUID(), nullable=True),
        sa.Column("their_stock", sa.Integer(), nullable=True),
        sa.Column("our_stock", sa.Integer(), nullable=True),
        sa.Column("stock_difference", sa.Integer(), nullable=True),
        sa.Column("stock_difference_pct", sa.Double(), nullable=True),
        sa.Column("their_orders", sa.Integer(), nullable=True),
        sa.Column("our_orders", sa.Integer(), nullable=True),
        sa.Column("orders_difference", sa.Integer(), nullable=True),
        sa.Column("orders_difference_pct", sa.Double(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.CheckConstraint(
            "status IN ('matched', 'only_theirs', 'only_ours')", name=op.f("ck_reconciliation_rows_status")
        ),
        sa.ForeignKeyConstraint(
            ["reconciliation_id"],
            ["reconciliations.id"],
            name=op.f("fk_reconciliation_rows_reconciliation_id_reconciliations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reconciliation_id", "position", name=op.f("pk_reconciliation_rows")),
    )
    op.create_index(op.f("ix_reconciliation_rows_tenant_id"), "reconciliation_rows", ["tenant_id"], unique=False)
    op.create_table(
        "restock_overrides",
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), nullable=True),
        sa.Column("safety_days", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.CheckConstraint(
            "lead_time_days BETWEEN 0 AND 365 AND safety_days BETWEEN 0 AND 365", name=op.f("ck_restock_overrides_days")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_restock_overrides_product_id_products"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_restock_overrides_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_restock_overrides")),
    )
    op.create_index(op.f("ix_restock_overrides_tenant_id"), "restock_overrides", ["tenant_id"], unique=False)
    for stmt in rls.grant_app(TENANT_TABLES):
        op.execute(stmt)
    for table in TENANT_TABLES:
        for stmt in rls.enable_tenant_rls(table):
            op.execute(stmt)
    # The daily-report cron asks which organizations are due: their settings and time zone, nothing else.
    for stmt in rls.system_read_policy("report_settings"):
        op.execute(stmt)
    op.execute(
        f"""CREATE FUNCTION {DUE.replace("(timestamptz)", "(p_now timestamptz)")}
        RETURNS TABLE (tenant_id uuid, local_date date)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
            SELECT s.tenant_id, (p_now AT TIME ZONE t.timezone)::date
            FROM report_settings s JOIN tenants t ON t.id = s.tenant_id
            WHERE s.daily_report_time IS NOT NULL
              AND (p_now AT TIME ZONE t.timezone)::time >= s.daily_report_time
              AND (s.last_daily_report_on IS NULL
                   OR s.last_daily_report_on < (p_now AT TIME ZONE t.timezone)::date)
        $$"""
    )
    op.execute(f"ALTER FUNCTION {DUE} OWNER TO {rls.SYSTEM_ROLE}")
    op.execute(f"REVOKE ALL ON FUNCTION {DUE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {DUE} TO {rls.APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {DUE}")
    op.execute("DROP POLICY IF EXISTS system_read ON report_settings")
    for table in TENANT_TABLES:
        for stmt in rls.disable_tenant_rls(table):
            op.execute(stmt)
    for stmt in rls.revoke_app(TENANT_TABLES):
        op.execute(stmt)
    op.drop_index(op.f("ix_restock_overrides_tenant_id"), table_name="restock_overrides")
    op.drop_table("restock_overrides")
    op.drop_index(op.f("ix_reconciliation_rows_tenant_id"), table_name="reconciliation_rows")
    op.drop_table("reconciliation_rows")
    op.drop_index(op.f("ix_sheet_links_tenant_id"), table_name="sheet_links")
    op.drop_table("sheet_links")
    op.drop_index(op.f("ix_reconciliations_tenant_id"), table_name="reconciliations")
    op.drop_index("ix_reconciliations_tenant_created", table_name="reconciliations")
    op.drop_table("reconciliations")
    op.drop_table("report_settings")
