"""Every SQL statement of the accounts area."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Membership, RefreshToken, Role, Tenant, User
from app.db.repository import TenantRepository


class UserRepository:
    """Users are global (one email, many organizations): not tenant-scoped by design."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.session.get(User, user_id)

    async def get_by_email(self, email: str) -> User | None:
        result = await self.session.execute(select(User).where(User.email == email))
        return result.scalar_one_or_none()

    async def email_exists(self, email: str) -> bool:
        result = await self.session.execute(select(func.count()).select_from(User).where(User.email == email))
        return bool(result.scalar_one())

    def add(self, user: User) -> User:
        self.session.add(user)
        return user

    async def memberships(self, user_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
        """A user's organizations, across tenants, through the audited SECURITY DEFINER function."""
        rows = await self.session.execute(
            text("SELECT tenant_id, role::text FROM st_user_memberships(:uid)"), {"uid": user_id}
        )
        return [(r[0], r[1]) for r in rows]


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

    async def count_owners(self) -> int:
        return await self.count(Membership.role == Role.OWNER)


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

    async def mark_used(self, token_id: uuid.UUID, at: datetime, replaced_by: uuid.UUID) -> None:
        await self.session.execute(
            update(RefreshToken)
            .where(RefreshToken.tenant_id == self.tenant_id, RefreshToken.id == token_id)
            .values(used_at=at, replaced_by=replaced_by)
        )
