"""Every SQL statement of the accounts area."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.db.models import Invitation, Membership, RefreshToken, Role, Tenant, User
from app.db.models.accounts import TOKEN_VERSION_SEQ
from app.db.reads import read_one
from app.db.repository import TenantRepository


@dataclass(frozen=True, slots=True)
class MembershipRef:
    """One of a user's organizations, as login sees it before any tenant context exists."""

    tenant_id: uuid.UUID
    role: str
    token_version: int


async def next_token_version(session: AsyncSession) -> int:
    """A version above every one issued so far (one sequence for all memberships)."""
    return int((await session.execute(select(TOKEN_VERSION_SEQ.next_value()))).scalar_one())


class UserRepository:
    """Users are global (one email, many organizations): not tenant-scoped by design."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def credentials(self, email: str) -> tuple[uuid.UUID, str, bool] | None:
        """(id, password hash, active) — one statement on a pooled connection released at once, outside the
        session's transaction: login verifies the password without holding a connection (argon2 may wait in
        the hashing pool's queue, and a held connection per waiting login would drain the database pool)."""
        engine = self.session.bind
        assert isinstance(engine, AsyncEngine)
        row = await read_one(engine, "SELECT id, password_hash, is_active FROM users WHERE email = $1", email)
        return None if row is None else (row[0], row[1], bool(row[2]))

    async def get_by_email(self, email: str) -> User | None:
        result = await self.session.execute(select(User).where(User.email == email))
        return result.scalar_one_or_none()

    async def email_exists(self, email: str) -> bool:
        result = await self.session.execute(select(func.count()).select_from(User).where(User.email == email))
        return bool(result.scalar_one())

    def add(self, user: User) -> User:
        self.session.add(user)
        return user

    async def memberships(self, user_id: uuid.UUID) -> list[MembershipRef]:
        """A user's organizations, across tenants, through the audited SECURITY DEFINER function."""
        rows = await self.session.execute(
            text("SELECT tenant_id, role::text, token_version FROM st_user_memberships(:uid)"), {"uid": user_id}
        )
        return [MembershipRef(r[0], r[1], int(r[2])) for r in rows]


class TenantSelfRepository:
    """The tenant's own row (row-level security keys it on ``id``)."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id

    async def get(self) -> Tenant | None:
        result = await self.session.execute(select(Tenant).where(Tenant.id == self.tenant_id))
        return result.scalar_one_or_none()


class MembershipRepository(TenantRepository[Membership]):
    model = Membership

    async def get_for_user(self, user_id: uuid.UUID) -> Membership | None:
        result = await self.session.execute(self.select().where(Membership.user_id == user_id))
        return result.scalar_one_or_none()

    async def list_with_users(
        self, *, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[tuple[Membership, User]]:
        stmt = (
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.tenant_id == self.tenant_id)
            .order_by(Membership.created_at, Membership.id)
            .limit(limit)
        )
        if after is not None:
            stmt = stmt.where(tuple_(Membership.created_at, Membership.id) > tuple_(*after))
        return [(m, u) for m, u in (await self.session.execute(stmt)).all()]

    async def get_by_email(self, email: str) -> Membership | None:
        stmt = self.select().join(User, User.id == Membership.user_id).where(User.email == email)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def count_owners(self) -> int:
        return await self.count(Membership.role == Role.OWNER)

    async def current_version(self, user_id: uuid.UUID) -> int | None:
        """The membership's token version (None: not a member), for the gate's fallback when Redis is down."""
        stmt = self.select(Membership.token_version).where(Membership.user_id == user_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()


class RefreshTokenRepository(TenantRepository[RefreshToken]):
    model = RefreshToken

    async def get_for_update(self, token_id: uuid.UUID) -> RefreshToken | None:
        stmt = self.select().where(RefreshToken.id == token_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def revoke_family(self, family_id: uuid.UUID, at: datetime) -> int:
        return await self.update_where(
            {"revoked_at": at}, RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None)
        )

    async def revoke_user(self, user_id: uuid.UUID, at: datetime) -> int:
        return await self.update_where(
            {"revoked_at": at}, RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
        )

    async def family_revoked(self, family_id: uuid.UUID) -> bool:
        """Has this login session been ended (logout, replay, removal)?"""
        stmt = self.select(RefreshToken.id).where(
            RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_not(None)
        )
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def mark_used(self, token_id: uuid.UUID, at: datetime, replaced_by: uuid.UUID) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.tenant_id == self.tenant_id, RefreshToken.id == token_id)
            .values(used_at=at, replaced_by=replaced_by)
        )


class InvitationRepository(TenantRepository[Invitation]):
    model = Invitation

    async def get_for_update(self, invitation_id: uuid.UUID) -> Invitation | None:
        stmt = self.select().where(Invitation.id == invitation_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def revoke_open(self, email: str, at: datetime) -> int:
        """End the open invitation of this address (inviting again replaces it)."""
        return await self.update_where(
            {"revoked_at": at},
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )

    async def page_open(
        self, *, now: datetime, after: tuple[datetime, uuid.UUID] | None, limit: int
    ) -> list[Invitation]:
        stmt = (
            self.select()
            .where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at > now)
            .order_by(Invitation.created_at, Invitation.id)
            .limit(limit)
        )
        if after is not None:
            stmt = stmt.where(tuple_(Invitation.created_at, Invitation.id) > tuple_(*after))
        return list((await self.session.execute(stmt)).scalars().all())
