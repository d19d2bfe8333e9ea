"""Request and response bodies of the accounts area."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

# Written without \s (ECMA and Python disagree on what it matches) and without control characters, so the
# OpenAPI pattern and the server accept exactly the same strings.
_EMAIL_PART = r"[^@ \t\n\r\f\v\x00-\x1f\x7f-\x9f]+"
Email = Annotated[
    str, msgspec.Meta(min_length=3, max_length=320, pattern=rf"^{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}$")
]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=1024)]
OrgName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
RoleName = Literal["owner", "admin", "member"]


InvitationToken = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


class RegistrationCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Sign up: a new organization and its owner (named ``organization_name``, "My organization" if absent) —
    or, with an invitation's token, a new account that joins the inviting organization (the only way in when
    sign-up is invite-only; ``organization_name`` is then ignored)."""

    email: Email
    password: Password
    organization_name: OrgName | None = None
    invitation_token: InvitationToken | None = None


class SessionCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Log in: email and password (and which organization, for someone in several)."""

    email: Annotated[str, msgspec.Meta(max_length=320)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]
    tenant_id: uuid.UUID | None = None


class SessionRefresh(msgspec.Struct, forbid_unknown_fields=True):
    """Rotate the session's tokens: the refresh token is spent and a new pair issued."""

    refresh_token: Annotated[str, msgspec.Meta(max_length=512)]


class SessionRevoke(msgspec.Struct, forbid_unknown_fields=True):
    """Log out: the refresh token's whole family is revoked."""

    refresh_token: Annotated[str, msgspec.Meta(max_length=512)]


class TokenPair(msgspec.Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


class User(msgspec.Struct):
    id: uuid.UUID
    email: str
    created_at: datetime


class Tenant(msgspec.Struct):
    id: uuid.UUID
    name: str
    plan: str
    timezone: str
    created_at: datetime


class Registration(msgspec.Struct):
    """The new owner, their organization, and their first tokens."""

    user: User
    tenant: Tenant
    role: RoleName
    tokens: TokenPair


class Me(msgspec.Struct):
    user: User
    tenant: Tenant
    role: RoleName


class Member(msgspec.Struct):
    user_id: uuid.UUID
    email: str
    role: RoleName
    joined_at: datetime


class MemberPage(msgspec.Struct):
    items: list[Member]
    next_cursor: str | None = None


class InvitationCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Invite someone by e-mail; they join when they accept, logged in as that address."""

    email: Email
    role: RoleName = "member"


class Invitation(msgspec.Struct):
    id: uuid.UUID
    email: str
    role: RoleName
    expires_at: datetime
    created_at: datetime
    invited_by: uuid.UUID | None = None


class InvitationWithSecret(msgspec.Struct):
    """The new invitation with its one-time ``token`` (shown only in this answer; give it to the invitee)."""

    id: uuid.UUID
    email: str
    role: RoleName
    expires_at: datetime
    created_at: datetime
    token: str
    invited_by: uuid.UUID | None = None


class InvitationPage(msgspec.Struct):
    items: list[Invitation]
    next_cursor: str | None = None


class MembershipCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Join an organization by accepting its invitation (the caller is logged in as the invited address)."""

    token: InvitationToken


class Membership(msgspec.Struct):
    """The organization just joined, the role in it, and tokens for it."""

    user: User
    tenant: Tenant
    role: RoleName
    tokens: TokenPair


class MemberUpdate(msgspec.Struct, forbid_unknown_fields=True):
    role: RoleName
