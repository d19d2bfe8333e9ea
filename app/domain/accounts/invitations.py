"""Invitations: the only way into an organization. An owner or admin invites an address with a role; the
invitee — logged in as that address, or signing up with the token — accepts, and only then is a member.

The token is ``inv1.<tenant>.<invitation id>.<secret>``: the tenant lets acceptance find the invitation
under row-level security before the invitee belongs to that tenant; only the secret's SHA-256 is stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import set_tenant
from app.db.models import Invitation, Membership, Role, Tenant, User
from app.db.outbox import add_job
from app.domain.accounts.emails import InvalidEmail, normalize_email
from app.domain.accounts.repositories import (
    InvitationRepository,
    MembershipRepository,
    TenantSelfRepository,
    UserRepository,
)
from app.domain.accounts.schemas import TokenPair
from app.domain.accounts.sessions import SessionIssuer
from app.domain.billing.services import ensure_within_limit
from app.lib import security
from app.lib.clock import utcnow
from app.lib.errors import ConflictError, FieldError, NotFoundError, PermissionDeniedError, ValidationError
from app.lib.ids import uuid7
from app.lib.pagination import Page, paginate
from app.lib.tokens import AccessTokenCodec, Principal

INVITATION_PREFIX = "inv1"
INVITATION_TTL = timedelta(days=7)


class InvitationInvalidError(NotFoundError):
    code = "invitation_invalid"
    title = "No such invitation"


class InvitationEmailMismatchError(PermissionDeniedError):
    code = "invitation_email_mismatch"


class AlreadyMemberError(ConflictError):
    code = "already_member"


def email_or_422(raw: str, field: str = "email") -> str:
    try:
        return normalize_email(raw)
    except InvalidEmail as exc:
        raise ValidationError(
            f"Not a usable e-mail address: {exc}.", errors=[FieldError(field=field, message=str(exc))]
        ) from exc


def check_can_grant(principal: Principal, role: str) -> None:
    if role == Role.OWNER.value and principal.role != Role.OWNER.value:
        raise PermissionDeniedError("Only an owner can make someone an owner.")


def _parse(token: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != INVITATION_PREFIX:
        raise InvitationInvalidError("The invitation does not exist, has expired, or was already used.")
    try:
        return uuid.UUID(hex=parts[1]), uuid.UUID(hex=parts[2]), parts[3]
    except ValueError as exc:
        raise InvitationInvalidError("The invitation does not exist, has expired, or was already used.") from exc


@dataclass(frozen=True)
class CreatedInvitation:
    row: Invitation
    token: str


@dataclass(frozen=True)
class Joined:
    tenant: Tenant
    membership: Membership


async def claim_invitation(session: AsyncSession, token: str, user: User, *, billing_enabled: bool = False) -> Joined:
    """Turn a valid invitation for ``user``'s address into their membership (switches the session's tenant).
    The plan's member limit is checked again here: an organization may have downgraded since it invited."""
    tenant_id, invitation_id, secret = _parse(token)
    await set_tenant(session, tenant_id)
    invitations = InvitationRepository(session, tenant_id)
    row = await invitations.get_for_update(invitation_id)
    now = utcnow()
    if (
        row is None
        or not security.constant_time_equal(row.token_hash, security.sha256_hex(secret))
        or row.accepted_at is not None
        or row.revoked_at is not None
        or row.expires_at <= now
    ):
        raise InvitationInvalidError("The invitation does not exist, has expired, or was already used.")
    if row.email != user.email:
        raise InvitationEmailMismatchError("This invitation is for another e-mail address; log in as that address.")
    members = MembershipRepository(session, tenant_id)
    if await members.get_for_user(user.id) is not None:
        raise AlreadyMemberError("You are already a member of this organization.")
    await ensure_within_limit(session, tenant_id, "members", await members.count(), billing_enabled=billing_enabled)
    membership = members.add(Membership(user_id=user.id, role=row.role))
    row.accepted_at = now
    row.accepted_by = user.id
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent acceptance of another invitation to the same organization
        raise AlreadyMemberError("You are already a member of this organization.") from exc
    await session.refresh(membership)
    tenant = await TenantSelfRepository(session, tenant_id).get()
    assert tenant is not None
    add_job(
        session,
        "audit.record",
        f"audit:invitation.accepted:{row.id}",
        tenant_id=tenant_id,
        action="member.joined",
        actor_user_id=str(user.id),
        data={"role": row.role.value, "invitation_id": str(row.id)},
    )
    return Joined(tenant=tenant, membership=membership)


class InvitationService:
    """Invite, list and withdraw (owners and admins); accept (the invitee)."""

    def __init__(
        self,
        session: AsyncSession,
        principal: Principal,
        codec: AccessTokenCodec,
        refresh_ttl_seconds: int,
        *,
        billing_enabled: bool = False,
    ) -> None:
        self.session = session
        self.principal = principal
        self.billing_enabled = billing_enabled
        self.issuer = SessionIssuer(session, codec, refresh_ttl_seconds)
        self.invitations = InvitationRepository(session, principal.tenant_id)

    async def create(self, email: str, role: str) -> CreatedInvitation:
        check_can_grant(self.principal, role)
        address = email_or_422(email)
        member = await MembershipRepository(self.session, self.principal.tenant_id).get_by_email(address)
        if member is not None:
            raise AlreadyMemberError("Someone with this address is already a member.")
        members = MembershipRepository(self.session, self.principal.tenant_id)
        await ensure_within_limit(
            self.session,
            self.principal.tenant_id,
            "members",
            await members.count(),
            billing_enabled=self.billing_enabled,
        )
        now = utcnow()
        await self.invitations.revoke_open(address, now)
        secret = security.new_secret()
        row = self.invitations.add(
            Invitation(
                id=uuid7(),
                email=address,
                role=Role(role),
                token_hash=security.sha256_hex(secret),
                invited_by=self.principal.user_id,
                expires_at=now + INVITATION_TTL,
            )
        )
        await self.session.flush()
        await self.session.refresh(row)
        token = f"{INVITATION_PREFIX}.{self.principal.tenant_id.hex}.{row.id.hex}.{secret}"
        return CreatedInvitation(row=row, token=token)

    async def page(self, cursor: str | None, limit: int) -> Page[Invitation]:
        """Open invitations (not accepted, withdrawn or expired), oldest first."""
        now = utcnow()
        return await paginate(
            lambda after, n: self.invitations.page_open(now=now, after=after, limit=n),
            cursor=cursor,
            limit=limit,
            key=lambda row: (row.created_at, row.id),
            types=(datetime, uuid.UUID),
        )

    async def revoke(self, invitation_id: uuid.UUID) -> None:
        row = await self.invitations.get_for_update(invitation_id)
        if row is None or row.accepted_at is not None:
            raise NotFoundError("No such open invitation.")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            await self.session.flush()

    async def accept(self, token: str) -> tuple[User, Joined, TokenPair]:
        """The caller joins the inviting organization and gets tokens for it."""
        if self.principal.user_id is None:
            raise PermissionDeniedError("An API key cannot accept invitations; log in as the invited person.")
        user = await UserRepository(self.session).get(self.principal.user_id)
        if user is None:
            raise PermissionDeniedError("This account no longer exists.")
        joined = await claim_invitation(self.session, token, user, billing_enabled=self.billing_enabled)
        m = joined.membership
        pair, _ = await self.issuer.issue(user.id, joined.tenant.id, m.role.value, m.token_version)
        return user, joined, pair
