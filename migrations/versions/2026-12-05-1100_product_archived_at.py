"""products.archived_at (issue 14 §1, Ozon); stock rows and history cascade by statement, not per row (issue 13 §2)

* ``products.archived_at``: a connection whose marketplace lists its whole catalogue on every sync (Ozon)
  marks a stored product the catalogue no longer returns as archived (the sync's time), zeroes its stock and
  resolves its open alerts with ``resolution = 'archived'``; a product listed again is un-archived. NULL:
  on sale (every existing row).
* The foreign keys ``stock_levels → variants``, ``stock_levels → warehouses`` and ``stock_history →
  variants`` are replaced by statement-level ``AFTER DELETE`` triggers on ``variants`` and ``warehouses``
  that delete the rows of the deleted ids in one statement (transition tables). The keys' only use was the
  cascade: every id the sync writes comes from a join with ``variants`` / ``warehouses`` in the same
  statement, under the per-connection sync lock. What they cost was a check per inserted row — 40 % of a
  first sync's stock write (``bench/sync.py``; ``docs/scaling.md``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = [
    ("stock_levels", "fk_stock_levels_variant_id_variants", "variant_id", "variants"),
    ("stock_levels", "fk_stock_levels_warehouse_id_warehouses", "warehouse_id", "warehouses"),
    ("stock_history", "fk_stock_history_variant_id_variants", "variant_id", "variants"),
]

VARIANTS_DELETED = """
CREATE FUNCTION st_variants_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM stock_levels s USING deleted_variants d WHERE s.variant_id = d.id;
    DELETE FROM stock_history h USING deleted_variants d WHERE h.variant_id = d.id;
    RETURN NULL;
END
$$"""

WAREHOUSES_DELETED = """
CREATE FUNCTION st_warehouses_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM stock_levels s USING deleted_warehouses d WHERE s.warehouse_id = d.id;
    RETURN NULL;
END
$$"""


def upgrade() -> None:
    op.add_column("products", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    for table, name, _, _ in KEYS:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    op.execute(VARIANTS_DELETED)
    op.execute(WAREHOUSES_DELETED)
    op.execute(
        "CREATE TRIGGER st_variants_deleted AFTER DELETE ON variants REFERENCING OLD TABLE AS deleted_variants "
        "FOR EACH STATEMENT EXECUTE FUNCTION st_variants_deleted()"
    )
    op.execute(
        "CREATE TRIGGER st_warehouses_deleted AFTER DELETE ON warehouses "
        "REFERENCING OLD TABLE AS deleted_warehouses FOR EACH STATEMENT EXECUTE FUNCTION st_warehouses_deleted()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER st_warehouses_deleted ON warehouses")
    op.execute("DROP TRIGGER st_variants_deleted ON variants")
    op.execute("DROP FUNCTION st_warehouses_deleted()")
    op.execute("DROP FUNCTION st_variants_deleted()")
    for table, name, column, target in KEYS:
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}) REFERENCES {target} (id) "
            "ON DELETE CASCADE"
        )
    op.drop_column("products", "archived_at")
