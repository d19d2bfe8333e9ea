"""Use-cases of the accounts area: register, login, refresh-token rotation, logout, members — and the area's
public surface (invitations, sessions, e-mail normalisation are re-exported here for other areas)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import set_tenant
from app.db.models import Membership, Role, Tenant, User
from app.db.outbox import add_job
from app.domain.accounts.emails import InvalidEmail, normalize_email, normalize_or_none
from app.domain.accounts.invitations import (
    AlreadyMemberError,
    InvitationEmailMismatchError,
    InvitationInvalidError,
    InvitationService,
    check_can_grant,
    claim_invitation,
    email_or_422,
)
from app.domain.accounts.repositories import (
    MembershipRepository,
    RefreshTokenRepository,
    TenantSelfRepository,
    UserRepository,
    next_token_version,
)
from app.domain.accounts.schemas import TokenPair
from app.domain.accounts.sessions import REFRESH_PREFIX, SessionIssuer, parse_refresh, session_is_current
from app.domain.apikeys.services import revoke_keys_created_by
from app.domain.billing.services import start_trial
from app.lib import security
from app.lib.clock import utcnow
from app.lib.errors import (
    AuthenticationError,
    CommitThenRaise,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
)
from app.lib.ids import uuid7
from app.lib.pagination import Page, paginate
from app.lib.tokens import (
    AccessTokenCodec,
    Principal,
    membership_revocation,
    queue_revocation,
    session_revocation,
)

__all__ = [
    "REFRESH_PREFIX",
    "AccountService",
    "AlreadyMemberError",
    "EmailTakenError",
    "InvalidEmail",
    "InvitationEmailMismatchError",
    "InvitationInvalidError",
    "InvitationService",
    "MemberService",
    "NewAccount",
    "SignupClosedError",
    "TenantSelfRepository",
    "normalize_email",
    "normalize_or_none",
    "session_is_current",
]

BAD_CREDENTIALS = "The email or password is incorrect."
DEFAULT_ORGANIZATION_NAME = "My organization"  # sign-up without a name (renamed later)
SignupMode = Literal["open", "invite_only", "closed"]


class RefreshTokenReuseError(AuthenticationError, CommitThenRaise):
    """A rotated refresh token came back: its family is revoked, and that revocation must commit."""


class EmailTakenError(ConflictError):
    code = "email_taken"


class SignupClosedError(PermissionDeniedError):
    code = "signup_closed"
    title = "Sign-up is closed"


@dataclass(frozen=True)
class NewAccount:
    user: User
    tenant: Tenant
    role: str
    tokens: TokenPair


class AccountService:
    def __init__(
        self,
        session: AsyncSession,
        codec: AccessTokenCodec,
        refresh_ttl_seconds: int,
        hasher: security.PasswordHasherPool,
        signup: SignupMode = "open",
        *,
        billing_enabled: bool = False,
        trial_days: int = 14,
    ) -> None:
        self.session = session
        self.codec = codec
        self.hasher = hasher
        self.signup = signup
        self.issuer = SessionIssuer(session, codec, refresh_ttl_seconds)
        self.users = UserRepository(session)
        self.billing_enabled = billing_enabled
        self.trial_days = trial_days

    async def register(
        self, email: str, password: str, organization_name: str | None, invitation_token: str | None = None
    ) -> NewAccount:
        """A new account: the owner of a new organization, or (with an invitation) a member of the inviter's."""
        if self.signup == "closed":
            raise SignupClosedError("Sign-up is closed on this server; ask an administrator.")
        if invitation_token is None and self.signup == "invite_only":
            raise SignupClosedError("Sign-up needs an invitation on this server (`invitation_token`).")
        address = email_or_422(email)
        # Hashed before the address is looked up, so a taken address costs the same time as a free one.
        password_hash = await self.hasher.hash(password)
        if await self.users.email_exists(address):
            raise EmailTakenError("An account with this email already exists.")
        user = self.users.add(User(id=uuid7(), email=address, password_hash=password_hash))
        try:
            await self.session.flush()
        except IntegrityError as exc:  # a concurrent sign-up with the same email won the race
            raise EmailTakenError("An account with this email already exists.") from exc
        if invitation_token is not None:
            joined = await claim_invitation(self.session, invitation_token, user, billing_enabled=self.billing_enabled)
            tenant, membership = joined.tenant, joined.membership
        else:
            name = (organization_name or "").strip() or DEFAULT_ORGANIZATION_NAME
            tenant, membership = await self._new_organization(user, name)
        tokens, _ = await self.issuer.issue(user.id, tenant.id, membership.role.value, membership.token_version)
        await self.session.flush()
        await self.session.refresh(user)
        return NewAccount(user=user, tenant=tenant, role=membership.role.value, tokens=tokens)

    async def _new_organization(self, user: User, name: str) -> tuple[Tenant, Membership]:
        tenant = Tenant(id=uuid7(), name=name)
        await set_tenant(self.session, tenant.id)
        self.session.add(tenant)
        await self.session.flush()
        membership = MembershipRepository(self.session, tenant.id).add(Membership(user_id=user.id, role=Role.OWNER))
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
        await self.session.flush()
        await self.session.refresh(tenant)
        await self.session.refresh(membership)
        return tenant, membership

    async def login(self, email: str, password: str, tenant_id: uuid.UUID | None = None) -> TokenPair:
        """Tokens for one membership. Every failure is the same 401 after the same work (one argon2
        verification), whether the address is unknown, the password wrong or the account in no organization."""
        address = normalize_or_none(email)
        found = await self.users.credentials(address) if address else None
        ok = await self.hasher.verify(found[1] if found else None, password)
        if found is None or not ok or not found[2]:
            raise AuthenticationError(BAD_CREDENTIALS)
        user_id, password_hash, _ = found
        memberships = await self.users.memberships(user_id)
        if tenant_id is not None:
            memberships = [m for m in memberships if m.tenant_id == tenant_id]
        if not memberships:
            raise AuthenticationError(BAD_CREDENTIALS)
        chosen = memberships[0]
        await set_tenant(self.session, chosen.tenant_id)
        if security.needs_rehash(password_hash):
            user = await self.users.get(user_id)
            if user is not None:
                user.password_hash = await self.hasher.hash(password)
        pair, _ = await self.issuer.issue(user_id, chosen.tenant_id, chosen.role, chosen.token_version)
        return pair

    async def refresh(self, token: str) -> TokenPair:
        tenant_id, token_id, secret = parse_refresh(token)
        await set_tenant(self.session, tenant_id)
        tokens = RefreshTokenRepository(self.session, tenant_id)
        row = await tokens.get_for_update(token_id)
        if row is None or not security.constant_time_equal(row.token_hash, security.sha256_hex(secret)):
            raise AuthenticationError("The refresh token is invalid.")
        now = utcnow()
        if row.used_at is not None or row.revoked_at is not None:
            # Reuse of a rotated (or revoked) token: assume theft and end the whole login session, access
            # tokens included.
            await tokens.revoke_family(row.family_id, now)
            queue_revocation(self.session.info, session_revocation(row.family_id, self.codec.ttl_seconds))
            raise RefreshTokenReuseError("The refresh token was already used; sign in again.")
        if row.expires_at <= now:
            raise AuthenticationError("The refresh token has expired.")
        membership = await MembershipRepository(self.session, tenant_id).get_for_user(row.user_id)
        if membership is None:
            await tokens.revoke_family(row.family_id, now)
            queue_revocation(self.session.info, session_revocation(row.family_id, self.codec.ttl_seconds))
            raise RefreshTokenReuseError("You are no longer a member of this organization.")
        pair, new_id = await self.issuer.issue(
            row.user_id, tenant_id, membership.role.value, membership.token_version, row.family_id
        )
        await self.session.flush()
        await tokens.mark_used(row.id, now, new_id)
        return pair

    async def logout(self, token: str) -> None:
        """End the token's login session — its refresh tokens and, from the next request, its access tokens.
        An unknown or already revoked token is not an error (idempotent)."""
        try:
            tenant_id, token_id, secret = parse_refresh(token)
        except AuthenticationError:
            return
        await set_tenant(self.session, tenant_id)
        tokens = RefreshTokenRepository(self.session, tenant_id)
        row = await tokens.get_for_update(token_id)
        if row is not None and security.constant_time_equal(row.token_hash, security.sha256_hex(secret)):
            await tokens.revoke_family(row.family_id, utcnow())
            queue_revocation(self.session.info, session_revocation(row.family_id, self.codec.ttl_seconds))


class MemberService:
    """``forget(key_hash)`` drops a revoked API key from this process's key cache."""

    def __init__(
        self,
        session: AsyncSession,
        principal: Principal,
        access_ttl_seconds: int = 900,
        forget: Callable[[str], None] | None = None,
        *,
        billing_enabled: bool = False,
    ) -> None:
        self.session = session
        self.principal = principal
        self.access_ttl = access_ttl_seconds
        self.forget = forget
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

    async def change_role(self, user_id: uuid.UUID, role: str) -> tuple[Membership, User]:
        """The new role applies from the member's next request: their tokens of the old role are refused and
        a refresh issues tokens of the new one."""
        membership = await self._get(user_id)
        check_can_grant(self.principal, role)
        if membership.role == Role.OWNER and self.principal.role != Role.OWNER.value:
            raise PermissionDeniedError("Only an owner can change another owner's role.")
        if membership.role == Role.OWNER and role != "owner" and await self.members.count_owners() <= 1:
            raise ConflictError("An organization needs at least one owner.")
        if membership.role != Role(role):
            membership.role = Role(role)
            membership.token_version = await next_token_version(self.session)
            revocation = membership_revocation(
                user_id, self.principal.tenant_id, membership.token_version, self.access_ttl
            )
            queue_revocation(self.session.info, revocation)
        await self.session.flush()
        user = await UserRepository(self.session).get(user_id)
        assert user is not None
        return membership, user

    async def remove(self, user_id: uuid.UUID) -> None:
        """Out from the next request: tokens, login sessions and the API keys they created stop working."""
        membership = await self._get(user_id)
        if membership.role == Role.OWNER:
            if self.principal.role != Role.OWNER.value:
                raise PermissionDeniedError("Only an owner can remove an owner.")
            if await self.members.count_owners() <= 1:
                raise ConflictError("An organization needs at least one owner.")
        await self.members.delete(membership.id)
        await RefreshTokenRepository(self.session, self.principal.tenant_id).revoke_user(user_id, utcnow())
        above_all = await next_token_version(self.session)
        queue_revocation(
            self.session.info, membership_revocation(user_id, self.principal.tenant_id, above_all, self.access_ttl)
        )
        await revoke_keys_created_by(self.session, self.principal.tenant_id, user_id, self.forget)

    async def _get(self, user_id: uuid.UUID) -> Membership:
        membership = await self.members.get_for_user(user_id)
        if membership is None:
            raise NotFoundError("No such member.")
        return membership
