"""sync runs resumed after their worker stopped (issue 13 §3, "no lost job")

``sync_runs.resumes``: how many times the sweep resumed the run — put it back to ``queued`` under a fresh job,
the same run id — because its worker stopped (its lease expired while it ran, or the job it waited for is
gone or held in progress by a dead worker). Past ``STOCK_TRACKER_SYNC_MAX_RESUMES`` the sweep ends it
``failed``/``abandoned`` as before. A plain column of the tenant's row: the table's row-level security covers
it like every other column; the sweep changes it through the tenant-scoped repository.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 13:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column("sync_runs", sa.Column("resumes", sa.Integer(), nullable=False, server_default=sa.text("0")))


def downgrade() -> None:
    op.drop_column("sync_runs", "resumes")
