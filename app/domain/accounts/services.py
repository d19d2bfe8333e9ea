"""Use-cases of the accounts area: register, login, refresh-token rotation, logout, members."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import set_tenant
from app.db.models import Membership, RefreshToken, Role, Tenant, User
from app.db.outbox import add_job
from app.domain.accounts.repositories import (
    MembershipRepository,
    RefreshTokenRepository,
    TenantSelfRepository,
    UserRepository,
)
from app.domain.accounts.schemas import TokenPair
from app.domain.billing.services import ensure_within_limit, start_trial
from app.lib import security
from app.lib.clock import utcnow
from app.lib.errors import AuthenticationError, CommitThenRaise, ConflictError, NotFoundError, PermissionDeniedError
from app.lib.ids import uuid7
from app.lib.pagination import Page, paginate
from app.lib.tokens import AccessTokenCodec, Principal

REFRESH_PREFIX = "rt1"
BAD_CREDENTIALS = "The email or password is incorrect."


class RefreshTokenReuseError(AuthenticationError, CommitThenRaise):
    """A rotated refresh token came back: its family is revoked, and that revocation must commit."""


class EmailTakenError(ConflictError):
    code = "email_taken"


@dataclass(frozen=True)
class NewAccount:
    user: User
    tenant: Tenant
    tokens: TokenPair


def normalize_email(email: str) -> str:
    return email.strip().lower()


def _parse_refresh(token: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != REFRESH_PREFIX:
        raise AuthenticationError("The refresh token is invalid.")
    try:
        return uuid.UUID(hex=parts[1]), uuid.UUID(hex=parts[2]), parts[3]
    except ValueError as exc:
        raise AuthenticationError("The refresh token is invalid.") from exc


class AccountService:
    def __init__(
        self,
        session: AsyncSession,
        codec: AccessTokenCodec,
        refresh_ttl_seconds: int,
        *,
        billing_enabled: bool = False,
        trial_days: int = 14,
    ) -> None:
        self.session = session
        self.codec = codec
        self.refresh_ttl = timedelta(seconds=refresh_ttl_seconds)
        self.users = UserRepository(session)
        self.billing_enabled = billing_enabled
        self.trial_days = trial_days

    async def _issue(
        self, user_id: uuid.UUID, tenant_id: uuid.UUID, role: str, family_id: uuid.UUID | None = None
    ) -> tuple[TokenPair, uuid.UUID]:
        secret = security.new_secret()
        token_id = uuid7()
        RefreshTokenRepository(self.session, tenant_id).add(
            RefreshToken(
                id=token_id,
                user_id=user_id,
                family_id=family_id or uuid7(),
                token_hash=security.sha256_hex(secret),
                expires_at=utcnow() + self.refresh_ttl,
            )
        )
        refresh = f"{REFRESH_PREFIX}.{tenant_id.hex}.{token_id.hex}.{secret}"
        pair = TokenPair(
            access_token=self.codec.encode(user_id, tenant_id, role),
            refresh_token=refresh,
            expires_in=self.codec.ttl_seconds,
        )
        return pair, token_id

    async def register(self, email: str, password: str, organization_name: str) -> NewAccount:
        email = normalize_email(email)
        if await self.users.email_exists(email):
            raise EmailTakenError("An account with this email already exists.")
        user = self.users.add(User(id=uuid7(), email=email, password_hash=security.hash_password(password)))
        tenant = Tenant(id=uuid7(), name=organization_name.strip())
        await set_tenant(self.session, tenant.id)
        self.session.add(tenant)
        try:
            await self.session.flush()
        except IntegrityError as exc:  # a concurrent sign-up with the same email won the race
            raise EmailTakenError("An account with this email already exists.") from exc
        MembershipRepository(self.session, tenant.id).add(Membership(user_id=user.id, role=Role.OWNER))
        # Billing on: the organization starts on the trial plan (no card, no Stripe call).
        start_trial(tenant, self.session, billing_enabled=self.billing_enabled, trial_days=self.trial_days)
        add_job(
            self.session,
            "audit.record",
            f"audit:tenant.registered:{tenant.id}",
            tenant_id=tenant.id,
            action="tenant.registered",
            actor_user_id=str(user.id),
            data={"organization_name": tenant.name},
        )
        tokens, _ = await self._issue(user.id, tenant.id, Role.OWNER.value)
        await self.session.flush()
        await self.session.refresh(tenant)
        await self.session.refresh(user)
        return NewAccount(user=user, tenant=tenant, tokens=tokens)

    async def login(self, email: str, password: str, tenant_id: uuid.UUID | None = None) -> TokenPair:
        user = await self.users.get_by_email(normalize_email(email))
        ok = security.verify_password(user.password_hash if user else None, password)
        if user is None or not ok or not user.is_active:
            raise AuthenticationError(BAD_CREDENTIALS)
        memberships = await self.users.memberships(user.id)
        if tenant_id is not None:
            memberships = [m for m in memberships if m[0] == tenant_id]
        if not memberships:
            raise AuthenticationError(BAD_CREDENTIALS)
        chosen_tenant, role = memberships[0]
        await set_tenant(self.session, chosen_tenant)
        if security.needs_rehash(user.password_hash):
            user.password_hash = security.hash_password(password)
        pair, _ = await self._issue(user.id, chosen_tenant, role)
        return pair

    async def refresh(self, token: str) -> TokenPair:
        tenant_id, token_id, secret = _parse_refresh(token)
        await set_tenant(self.session, tenant_id)
        tokens = RefreshTokenRepository(self.session, tenant_id)
        row = await tokens.get_for_update(token_id)
        if row is None or not security.constant_time_equal(row.token_hash, security.sha256_hex(secret)):
            raise AuthenticationError("The refresh token is invalid.")
        now = utcnow()
        if row.used_at is not None or row.revoked_at is not None:
            # Reuse of a rotated (or revoked) token: assume theft and end the whole login session.
            await tokens.revoke_family(row.family_id, now)
            raise RefreshTokenReuseError("The refresh token was already used; sign in again.")
        if row.expires_at <= now:
            raise AuthenticationError("The refresh token has expired.")
        membership = await MembershipRepository(self.session, tenant_id).get_for_user(row.user_id)
        if membership is None:
            await tokens.revoke_family(row.family_id, now)
            raise RefreshTokenReuseError("You are no longer a member of this organization.")
        pair, new_id = await self._issue(row.user_id, tenant_id, membership.role.value, row.family_id)
        await self.session.flush()
        await tokens.mark_used(row.id, now, new_id)
        return pair

    async def logout(self, token: str) -> None:
        """Revoke the token's family; an unknown or already revoked token is not an error (idempotent)."""
        try:
            tenant_id, token_id, secret = _parse_refresh(token)
        except AuthenticationError:
            return
        await set_tenant(self.session, tenant_id)
        tokens = RefreshTokenRepository(self.session, tenant_id)
        row = await tokens.get_for_update(token_id)
        if row is not None and security.constant_time_equal(row.token_hash, security.sha256_hex(secret)):
            await tokens.revoke_family(row.family_id, utcnow())


class MemberService:
    def __init__(self, session: AsyncSession, principal: Principal, *, billing_enabled: bool = False) -> None:
        self.session = session
        self.principal = principal
        self.members = MembershipRepository(session, principal.tenant_id)
        self.billing_enabled = billing_enabled

    async def me(self) -> tuple[User, Tenant, str]:
        user = await UserRepository(self.session).get(self.principal.user_id) if self.principal.user_id else None
        tenant = await TenantSelfRepository(self.session, self.principal.tenant_id).get()
        membership = await self.members.get_for_user(self.principal.user_id) if self.principal.user_id else None
        if user is None or tenant is None or membership is None:
            raise AuthenticationError("This account no longer belongs to the organization.")
        return user, tenant, membership.role.value

    async def page(self, cursor: str | None, limit: int) -> Page[tuple[Membership, User]]:
        """Members in the order they joined."""
        return await paginate(
            lambda after, n: self.members.list_with_users(after=after, limit=n),
            cursor=cursor,
            limit=limit,
            key=lambda row: (row[0].created_at, row[0].id),
            types=(datetime, uuid.UUID),
        )

    async def add(self, email: str, role: str) -> tuple[Membership, User]:
        self._check_can_grant(role)
        user = await UserRepository(self.session).get_by_email(normalize_email(email))
        if user is None:
            raise NotFoundError("No registered user has this email; ask them to sign up first.")
        if await self.members.get_for_user(user.id) is not None:
            raise ConflictError("This user is already a member.")
        await ensure_within_limit(
            self.session,
            self.principal.tenant_id,
            "members",
            await self.members.count(),
            billing_enabled=self.billing_enabled,
        )
        membership = self.members.add(Membership(user_id=user.id, role=Role(role)))
        await self.session.flush()
        await self.session.refresh(membership)
        return membership, user

    async def change_role(self, user_id: uuid.UUID, role: str) -> tuple[Membership, User]:
        membership = await self._get(user_id)
        self._check_can_grant(role)
        if membership.role == Role.OWNER and self.principal.role != Role.OWNER.value:
            raise PermissionDeniedError("Only an owner can change another owner's role.")
        if membership.role == Role.OWNER and role != "owner" and await self.members.count_owners() <= 1:
            raise ConflictError("An organization needs at least one owner.")
        membership.role = Role(role)
        await self.session.flush()
        user = await UserRepository(self.session).get(user_id)
        assert user is not None
        return membership, user

    async def remove(self, user_id: uuid.UUID) -> None:
        membership = await self._get(user_id)
        if membership.role == Role.OWNER:
            if self.principal.role != Role.OWNER.value:
                raise PermissionDeniedError("Only an owner can remove an owner.")
            if await self.members.count_owners() <= 1:
                raise ConflictError("An organization needs at least one owner.")
        await self.members.delete(membership.id)
        await RefreshTokenRepository(self.session, self.principal.tenant_id).revoke_user(user_id, utcnow())

    async def _get(self, user_id: uuid.UUID) -> Membership:
        membership = await self.members.get_for_user(user_id)
        if membership is None:
            raise NotFoundError("No such member.")
        return membership

    def _check_can_grant(self, role: str) -> None:
        if role == "owner" and self.principal.role != Role.OWNER.value:
            raise PermissionDeniedError("Only an owner can make someone an owner.")
