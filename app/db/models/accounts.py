"""Tenants, users, memberships, refresh tokens and the audit log."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Enum, ForeignKey, Index, Sequence, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, IdMixin, TenantMixin, TimestampMixin


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class Tenant(IdMixin, TimestampMixin, Base):
    """An organisation. Its own row is visible only inside its own tenant context."""

    __tablename__ = "tenants"
    __tenant_self__ = True

    name: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(40), default="self_hosted")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")


class User(IdMixin, TimestampMixin, Base):
    """A person; global (one email across tenants), joined to tenants through memberships."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))


# Token versions of every membership come from one sequence: a removal's revocation takes a fresh value above
# every version issued so far, and a later membership of the same person starts above that (app/lib/tokens.py).
TOKEN_VERSION_SEQ = Sequence("st_token_version_seq")
ROLE_ENUM = Enum(Role, name="membership_role", values_callable=lambda e: [m.value for m in e])


class Membership(IdMixin, TimestampMixin, TenantMixin, Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(ROLE_ENUM)
    # Access tokens carry the version they were issued under; a role change takes a new one.
    token_version: Mapped[int] = mapped_column(
        BigInteger, TOKEN_VERSION_SEQ, server_default=TOKEN_VERSION_SEQ.next_value()
    )
    user: Mapped[User] = relationship(lazy="raise")


class Invitation(IdMixin, TimestampMixin, TenantMixin, Base):
    """An offer to join the organization, accepted by the invitee logged in as ``email`` (one-time token)."""

    __tablename__ = "invitations"
    __table_args__ = (
        # One open invitation per address and organization (inviting again replaces it).
        Index(
            "uq_invitations_open_email",
            "tenant_id",
            "email",
            unique=True,
            postgresql_where=text("accepted_at IS NULL AND revoked_at IS NULL"),
        ),
    )

    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[Role] = mapped_column(ROLE_ENUM)
    token_hash: Mapped[str] = mapped_column(String(64))
    invited_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    accepted_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None]


class RefreshToken(IdMixin, TimestampMixin, TenantMixin, Base):
    """One issued refresh token; tokens from one login form a family that is revoked together."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (Index(None, "family_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[uuid.UUID]
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    replaced_by: Mapped[uuid.UUID | None]


class AuditEvent(IdMixin, TimestampMixin, TenantMixin, Base):
    """Who did what, written by jobs from the outbox; unique per source message so reruns add nothing."""

    __tablename__ = "audit_events"

    action: Mapped[str] = mapped_column(String(80))
    actor_user_id: Mapped[uuid.UUID | None]
    source_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
