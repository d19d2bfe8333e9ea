"""sync run lifecycle: runs that always end (issue 14 §1)

* ``sync_status`` gains ``waiting``: a run waiting on a marketplace budget, with ``resume_at`` and the
  reason (``status_reason``) — never shown as ``queued``.
* ``sync_runs.lease_expires_at``: a run that is queued, waiting or running must be renewed before this moment
  (the worker renews it while it syncs; a queued or waiting run whose job still exists is renewed by the
  sweep). ``st_expired_sync_runs`` lists the runs past their lease across tenants for the sweep, which ends
  them ``failed``/``abandoned`` through the tenant-scoped repository. A partial index keeps that read to the
  unfinished runs.
* ``sync_runs.waited_seconds``: the marketplace waits a run has spent so far (its budget,
  ``STOCK_TRACKER_SYNC_MAX_WAIT_S``, spans every job of the run).
* ``connections.last_attempt_at`` / ``last_outcome``: when the last run started and how the last one ended
  (``last_success_at`` moves only on ``succeeded``).

Downgrade: PostgreSQL cannot drop an enum value; waiting runs are ended ``failed`` and the value stays.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db import rls

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXPIRED = "st_expired_sync_runs(timestamptz, integer)"


def upgrade() -> None:
    # Not usable inside this transaction (PostgreSQL's rule for a new enum value): nothing below names it.
    op.execute("ALTER TYPE sync_status ADD VALUE IF NOT EXISTS 'waiting' AFTER 'running'")
    op.add_column("sync_runs", sa.Column("resume_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("sync_runs", sa.Column("status_reason", sa.Text(), nullable=True))
    op.add_column("sync_runs", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("sync_runs", sa.Column("waited_seconds", sa.Float(), nullable=False, server_default=sa.text("0")))
    op.add_column("connections", sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("connections", sa.Column("last_outcome", sa.String(40), nullable=True))
    # Unfinished runs of before get a lease now: the first sweep judges them like any other.
    op.execute("UPDATE sync_runs SET lease_expires_at = now() WHERE finished_at IS NULL")
    op.create_index(
        "ix_sync_runs_lease_open",
        "sync_runs",
        ["lease_expires_at"],
        postgresql_where=sa.text("finished_at IS NULL"),
    )
    op.execute(f"GRANT SELECT ON sync_runs TO {rls.SYSTEM_ROLE}")
    op.execute(f"CREATE POLICY system_lease_read ON sync_runs FOR SELECT TO {rls.SYSTEM_ROLE} USING (true)")
    op.execute(
        """CREATE FUNCTION st_expired_sync_runs(p_now timestamptz, p_limit integer)
        RETURNS TABLE (tenant_id uuid, id uuid, status text, job_id text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
            SELECT r.tenant_id, r.id, r.status::text, r.job_id::text FROM sync_runs r
            WHERE r.finished_at IS NULL AND r.lease_expires_at < p_now
            ORDER BY r.lease_expires_at LIMIT p_limit
        $$"""
    )
    op.execute(f"ALTER FUNCTION {EXPIRED} OWNER TO {rls.SYSTEM_ROLE}")
    op.execute(f"REVOKE ALL ON FUNCTION {EXPIRED} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {EXPIRED} TO {rls.APP_ROLE}")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {EXPIRED}")
    op.execute("DROP POLICY IF EXISTS system_lease_read ON sync_runs")
    op.drop_index("ix_sync_runs_lease_open", table_name="sync_runs")
    op.execute(
        "UPDATE sync_runs SET status = 'failed', error_code = 'abandoned', finished_at = now() "
        "WHERE status::text = 'waiting'"
    )
    op.drop_column("connections", "last_outcome")
    op.drop_column("connections", "last_attempt_at")
    op.drop_column("sync_runs", "waited_seconds")
    op.drop_column("sync_runs", "lease_expires_at")
    op.drop_column("sync_runs", "status_reason")
    op.drop_column("sync_runs", "resume_at")
