"""Order lines cascade from their connection by statement, not per row (issue 13 §2)

The foreign key ``order_lines → connections`` is replaced by a statement-level ``AFTER DELETE`` trigger on
``connections`` that deletes the order lines of the deleted connections in one statement (a transition
table), as migration 0012 did for stock rows and history. The key's only use was the cascade: the sync
writes a connection's order lines under its per-connection lock, with the connection id it was given by the
connection row it read. What it cost was a check per inserted line (an SPI lookup and a ``FOR KEY SHARE``
lock on the connection row): ~40 % of a first sync's order-line insert, and the order lines are the
largest part of a first sync's PostgreSQL time (``docs/scaling.md``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 12:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONNECTIONS_DELETED = """
CREATE FUNCTION st_connections_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM order_lines o USING deleted_connections d WHERE o.connection_id = d.id;
    RETURN NULL;
END
$$"""


def upgrade() -> None:
    op.execute("ALTER TABLE order_lines DROP CONSTRAINT fk_order_lines_connection_id_connections")
    op.execute(CONNECTIONS_DELETED)
    op.execute(
        "CREATE TRIGGER st_connections_deleted AFTER DELETE ON connections "
        "REFERENCING OLD TABLE AS deleted_connections FOR EACH STATEMENT EXECUTE FUNCTION st_connections_deleted()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER st_connections_deleted ON connections")
    op.execute("DROP FUNCTION st_connections_deleted()")
    # Lines whose connection is gone (none, unless written around the trigger) would block the key.
    op.execute("DELETE FROM order_lines o WHERE NOT EXISTS (SELECT 1 FROM connections c WHERE c.id = o.connection_id)")
    op.execute(
        "ALTER TABLE order_lines ADD CONSTRAINT fk_order_lines_connection_id_connections "
        "FOREIGN KEY (connection_id) REFERENCES connections (id) ON DELETE CASCADE"
    )
