"""products.archived_at: a product the marketplace no longer lists (issue 14 §1, Ozon)

A connection whose marketplace lists its whole catalogue on every sync (Ozon) marks a stored product that
the catalogue no longer returns as archived (``archived_at`` = the sync's time), zeroes its stock and
resolves its open alerts with ``resolution = 'archived'``; a product listed again is un-archived. NULL: on
sale (every existing row). No index: the evaluation reads the column through the product it already joins.

Revision ID: 0012
Revises: 0010 (written before 0011 existed on main; re-chain after 0011 when merging)
Create Date: 2026-12-05 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("products", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("products", "archived_at")
