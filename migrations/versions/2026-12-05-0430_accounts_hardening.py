"""accounts hardening: membership token versions (one sequence), invitations, normalised e-mails

* ``memberships.token_version`` from ``st_token_version_seq``: access tokens carry it, a role change takes a
  new one, a removal's revocation a fresh one above every version issued (app/lib/tokens.py);
  ``st_user_memberships`` also answers it (login issues tokens before any tenant context exists).
* ``invitations`` (tenant table, row-level security): members join only by invitation and acceptance.
* Existing e-mails rewritten in their normalised form (NFKC, IDNA domain, lower case); an address whose
  normal form another account already has is left as it is and reported (merging people is not a migration's
  call).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 04:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.db import rls
from app.domain.accounts.emails import normalize_or_none

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MEMBERSHIPS_FN = "st_user_memberships(uuid)"


def _memberships_function(with_version: bool) -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {MEMBERSHIPS_FN}")
    extra_type = ", token_version bigint" if with_version else ""
    extra_col = ", m.token_version" if with_version else ""
    op.execute(
        f"""CREATE FUNCTION st_user_memberships(p_user_id uuid)
        RETURNS TABLE (tenant_id uuid, role membership_role, created_at timestamptz{extra_type})
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
            SELECT m.tenant_id, m.role, m.created_at{extra_col} FROM memberships m
            WHERE m.user_id = p_user_id ORDER BY m.created_at
        $$"""
    )
    op.execute(f"ALTER FUNCTION {MEMBERSHIPS_FN} OWNER TO {rls.SYSTEM_ROLE}")
    op.execute(f"REVOKE ALL ON FUNCTION {MEMBERSHIPS_FN} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {MEMBERSHIPS_FN} TO {rls.APP_ROLE}")


def _normalise_emails() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, email FROM users")).all()
    taken = {email for _, email in rows}
    for user_id, email in rows:
        normal = normalize_or_none(email)
        if normal is None or normal == email:
            continue
        if normal in taken:
            print(f"0009: user {user_id}: e-mail left as it is, its normal form belongs to another account")
            continue
        bind.execute(sa.text("UPDATE users SET email = :e WHERE id = :id"), {"e": normal, "id": user_id})
        taken.discard(email)
        taken.add(normal)


def upgrade() -> None:
    op.execute("CREATE SEQUENCE st_token_version_seq AS bigint")
    op.execute(f"GRANT USAGE, SELECT ON SEQUENCE st_token_version_seq TO {rls.APP_ROLE}")
    op.add_column(
        "memberships",
        sa.Column(
            "token_version", sa.BigInteger(), server_default=sa.text("nextval('st_token_version_seq')"), nullable=False
        ),
    )
    _memberships_function(with_version=True)

    op.create_table(
        "invitations",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", postgresql.ENUM(name="membership_role", create_type=False), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.UUID(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_by", sa.UUID(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invited_by"], ["users.id"], name=op.f("fk_invitations_invited_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["accepted_by"], ["users.id"], name=op.f("fk_invitations_accepted_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_invitations_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
    )
    op.create_index(op.f("ix_invitations_tenant_id"), "invitations", ["tenant_id"], unique=False)
    op.create_index(
        "uq_invitations_open_email",
        "invitations",
        ["tenant_id", "email"],
        unique=True,
        postgresql_where=sa.text("accepted_at IS NULL AND revoked_at IS NULL"),
    )
    for stmt in [*rls.grant_app(["invitations"]), *rls.enable_tenant_rls("invitations")]:
        op.execute(stmt)
    _normalise_emails()


def downgrade() -> None:
    for stmt in [*rls.disable_tenant_rls("invitations"), *rls.revoke_app(["invitations"])]:
        op.execute(stmt)
    op.drop_index("uq_invitations_open_email", table_name="invitations")
    op.drop_index(op.f("ix_invitations_tenant_id"), table_name="invitations")
    op.drop_table("invitations")
    _memberships_function(with_version=False)
    op.drop_column("memberships", "token_version")
    op.execute("DROP SEQUENCE IF EXISTS st_token_version_seq")
