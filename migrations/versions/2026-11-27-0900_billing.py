"""billing: subscription state, plan changes, usage reports, product usage, Stripe events; RLS; the scheduler
learns which organizations are read-only and which connections fit their plan

Tenant tables (``tenant_id``, FORCE row-level security, the app role's grants): ``billing_accounts``,
``plan_changes``, ``usage_reports``, ``product_usage``.

``stripe_events`` is a system table: a Stripe webhook arrives with no tenant (the organization is known only
after reading the objects it names from Stripe), so it is stored before any tenant context exists and the
processing job reads it by its Stripe id. It keeps ids only, never a payload.

Two narrow SECURITY DEFINER paths, owned by the NOLOGIN system role: ``st_billing_customers()`` (the usage
cron's list of organizations with a Stripe customer) and the fan-out's ``st_schedulable_connections()``,
which now also says whether the organization is read-only and each connection's place among its own.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import rls

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ["billing_accounts", "plan_changes", "usage_reports", "product_usage"]
CUSTOMERS = "st_billing_customers()"
SCHEDULABLE = "st_schedulable_connections()"


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
    ]


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.id"], name=op.f(f"fk_{table}_tenant_id_tenants"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("plan", sa.String(length=40), nullable=False),
        sa.Column("trial_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("access_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_subscription_id", sa.String(length=255), nullable=True),
        sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_at_period_end", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("pending_plan", sa.String(length=40), nullable=True),
        sa.Column("pending_plan_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        _tenant_fk("billing_accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_accounts")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_billing_accounts_tenant_id")),
        sa.UniqueConstraint("stripe_customer_id", name=op.f("uq_billing_accounts_stripe_customer_id")),
    )
    op.create_index(op.f("ix_billing_accounts_tenant_id"), "billing_accounts", ["tenant_id"], unique=False)
    op.create_table(
        "plan_changes",
        sa.Column("from_plan", sa.String(length=40), nullable=False),
        sa.Column("to_plan", sa.String(length=40), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=False),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("cause", sa.String(length=40), nullable=False),
        sa.Column("actor_user_id", sa.UUID(), nullable=True),
        sa.Column("stripe_event_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_subscription_id", sa.String(length=255), nullable=True),
        *_timestamps(),
        _tenant_fk("plan_changes"),
        sa.ForeignKeyConstraint(
            ["actor_user_id"], ["users.id"], name=op.f("fk_plan_changes_actor_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_changes")),
    )
    op.create_index(op.f("ix_plan_changes_tenant_id"), "plan_changes", ["tenant_id"], unique=False)
    op.create_index("ix_plan_changes_tenant_created", "plan_changes", ["tenant_id", "created_at"], unique=False)
    op.create_table(
        "usage_reports",
        sa.Column("meter", sa.String(length=40), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("identifier", sa.String(length=200), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        *_timestamps(),
        _tenant_fk("usage_reports"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_reports")),
        sa.UniqueConstraint("identifier", name=op.f("uq_usage_reports_identifier")),
        sa.UniqueConstraint("tenant_id", "meter", "hour", name=op.f("uq_usage_reports_tenant_id_meter_hour")),
    )
    op.create_index(op.f("ix_usage_reports_tenant_id"), "usage_reports", ["tenant_id"], unique=False)
    op.create_table(
        "product_usage",
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("synced", sa.Integer(), nullable=False),
        sa.Column("left_out", sa.Integer(), nullable=False),
        sa.Column("product_limit", sa.Integer(), nullable=False),
        sa.Column("plan", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.PrimaryKeyConstraint("connection_id", "day", name=op.f("pk_product_usage")),
    )
    op.create_index(op.f("ix_product_usage_tenant_id"), "product_usage", ["tenant_id"], unique=False)
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("object_type", sa.String(length=60), nullable=True),
        sa.Column("object_id", sa.String(length=255), nullable=True),
        sa.Column("customer_id", sa.String(length=255), nullable=True),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=60), nullable=True),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stripe_events")),
    )
    op.create_index(
        "ix_stripe_events_unprocessed",
        "stripe_events",
        ["received_at"],
        unique=False,
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    for stmt in rls.grant_app([*TENANT_TABLES, "stripe_events"]):
        op.execute(stmt)
    for table in TENANT_TABLES:
        for stmt in rls.enable_tenant_rls(table):
            op.execute(stmt)

    # The usage cron's list of organizations to report for (and nothing else about them).
    for stmt in rls.system_read_policy("billing_accounts"):
        op.execute(stmt)
    op.execute(
        f"""CREATE FUNCTION {CUSTOMERS}
        RETURNS TABLE (tenant_id uuid, stripe_customer_id text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
            SELECT b.tenant_id, b.stripe_customer_id::text FROM billing_accounts b
            WHERE b.stripe_customer_id IS NOT NULL ORDER BY b.tenant_id
        $$"""
    )
    # The fan-out: also whether the organization is read-only (access ended) and each connection's place
    # among the organization's connections (oldest first), so a plan's connection limit can skip the rest.
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEDULABLE}")
    op.execute(
        f"""CREATE FUNCTION {SCHEDULABLE}
        RETURNS TABLE (id uuid, tenant_id uuid, plan text, last_scheduled_slot bigint, read_only boolean,
                       rank_in_tenant integer)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
            SELECT c.id, c.tenant_id, t.plan::text, c.last_scheduled_slot,
                   coalesce(b.access_ends_at <= now(), false), c.rank_in_tenant::integer
            FROM (SELECT x.*, row_number() OVER (PARTITION BY x.tenant_id ORDER BY x.created_at, x.id) AS rank_in_tenant
                  FROM connections x) c
            JOIN tenants t ON t.id = c.tenant_id
            LEFT JOIN billing_accounts b ON b.tenant_id = c.tenant_id
            WHERE c.status IN ('active', 'rate_limited')
        $$"""
    )
    for fn in (CUSTOMERS, SCHEDULABLE):
        op.execute(f"ALTER FUNCTION {fn} OWNER TO {rls.SYSTEM_ROLE}")
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn} TO {rls.APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEDULABLE}")
    op.execute(
        f"""CREATE FUNCTION {SCHEDULABLE}
        RETURNS TABLE (id uuid, tenant_id uuid, plan text, last_scheduled_slot bigint)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
            SELECT c.id, c.tenant_id, t.plan::text, c.last_scheduled_slot
            FROM connections c JOIN tenants t ON t.id = c.tenant_id
            WHERE c.status IN ('active', 'rate_limited')
        $$"""
    )
    op.execute(f"ALTER FUNCTION {SCHEDULABLE} OWNER TO {rls.SYSTEM_ROLE}")
    op.execute(f"REVOKE ALL ON FUNCTION {SCHEDULABLE} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {SCHEDULABLE} TO {rls.APP_ROLE}")
    op.execute(f"DROP FUNCTION IF EXISTS {CUSTOMERS}")
    op.execute("DROP POLICY IF EXISTS system_read ON billing_accounts")
    for table in TENANT_TABLES:
        for stmt in rls.disable_tenant_rls(table):
            op.execute(stmt)
    for stmt in rls.revoke_app([*TENANT_TABLES, "stripe_events"]):
        op.execute(stmt)
    op.drop_index("ix_stripe_events_unprocessed", table_name="stripe_events")
    op.drop_table("stripe_events")
    op.drop_index(op.f("ix_product_usage_tenant_id"), table_name="product_usage")
    op.drop_table("product_usage")
    op.drop_index(op.f("ix_usage_reports_tenant_id"), table_name="usage_reports")
    op.drop_table("usage_reports")
    op.drop_index("ix_plan_changes_tenant_created", table_name="plan_changes")
    op.drop_index(op.f("ix_plan_changes_tenant_id"), table_name="plan_changes")
    op.drop_table("plan_changes")
    op.drop_index(op.f("ix_billing_accounts_tenant_id"), table_name="billing_accounts")
    op.drop_table("billing_accounts")
