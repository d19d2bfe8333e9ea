"""HTTP endpoints of the accounts area: auth, me, members."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter

from app.db.models import Invitation as InvitationRow
from app.db.models import Membership as MembershipRow
from app.db.models import Tenant as TenantRow
from app.db.models import User as UserRow
from app.domain.accounts.schemas import (
    Invitation,
    InvitationCreate,
    InvitationPage,
    InvitationWithSecret,
    Me,
    Member,
    MemberPage,
    Membership,
    MembershipCreate,
    MemberUpdate,
    Registration,
    RegistrationCreate,
    SessionCreate,
    SessionRefresh,
    SessionRevoke,
    Tenant,
    TokenPair,
    User,
)
from app.domain.accounts.services import AccountService, InvitationService, MemberService
from app.domain.api import admin_guard, errors_for


def user_out(row: UserRow) -> User:
    return User(id=row.id, email=row.email, created_at=row.created_at)


def tenant_out(row: TenantRow) -> Tenant:
    return Tenant(id=row.id, name=row.name, plan=row.plan, timezone=row.timezone, created_at=row.created_at)


def invitation_out(row: InvitationRow) -> Invitation:
    return Invitation(
        id=row.id,
        email=row.email,
        role=row.role.value,
        expires_at=row.expires_at,
        created_at=row.created_at,
        invited_by=row.invited_by,
    )


def member_out(membership: MembershipRow, user: UserRow) -> Member:
    return Member(user_id=user.id, email=user.email, role=membership.role.value, joined_at=membership.created_at)


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post(
        "/register",
        operation_id="register",
        summary="Create an organization and its owner (or, with an invitation's token, join the inviter's)",
        responses=errors_for(403, 404, 409, 422, 503),
    )
    async def register(self, data: RegistrationCreate, account_service: AccountService) -> Registration:
        new = await account_service.register(data.email, data.password, data.organization_name, data.invitation_token)
        return Registration(
            user=user_out(new.user),
            tenant=tenant_out(new.tenant),
            role=new.role,  # type: ignore[arg-type]
            tokens=new.tokens,
        )

    @post(
        "/login",
        operation_id="login",
        summary="Exchange email and password for tokens",
        status_code=200,
        responses=errors_for(401, 422, 503),
    )
    async def login(self, data: SessionCreate, account_service: AccountService) -> TokenPair:
        return await account_service.login(data.email, data.password, data.tenant_id)

    @post(
        "/refresh",
        operation_id="refreshTokens",
        summary="Rotate a refresh token",
        status_code=200,
        responses=errors_for(401, 422),
    )
    async def refresh(self, data: SessionRefresh, account_service: AccountService) -> TokenPair:
        return await account_service.refresh(data.refresh_token)

    @post(
        "/logout",
        operation_id="logout",
        summary="End the login session: its refresh tokens and (from the next request) its access tokens",
        status_code=204,
        responses=errors_for(422),
    )
    async def logout(self, data: SessionRevoke, account_service: AccountService) -> None:
        await account_service.logout(data.refresh_token)


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["auth"]

    @get(
        "/",
        operation_id="getMe",
        summary="The signed-in user, organization and role",
        responses=errors_for(401),
    )
    async def me(self, member_service: MemberService) -> Me:
        user, tenant, role = await member_service.me()
        return Me(user=user_out(user), tenant=tenant_out(tenant), role=role)  # type: ignore[arg-type]


class MembersController(Controller):
    path = "/api/v1/members"
    tags = ["members"]

    @get("/", operation_id="listMembers", summary="Members of the organization", responses=errors_for(401, 422))
    async def list_members(
        self,
        member_service: MemberService,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> MemberPage:
        page = await member_service.page(cursor, limit)
        return MemberPage(items=[member_out(m, u) for m, u in page.items], next_cursor=page.next_cursor)

    @patch(
        "/{user_id:uuid}",
        operation_id="updateMemberRole",
        summary="Change a member's role (their tokens of the old role stop working at once)",
        guards=[admin_guard],
        responses=errors_for(401, 403, 404, 409, 422),
    )
    async def update_member(self, user_id: uuid.UUID, data: MemberUpdate, member_service: MemberService) -> Member:
        return member_out(*await member_service.change_role(user_id, data.role))

    @delete(
        "/{user_id:uuid}",
        operation_id="removeMember",
        summary="Remove a member (their tokens and the API keys they created stop working at once)",
        guards=[admin_guard],
        responses=errors_for(401, 403, 404, 409),
    )
    async def remove_member(self, user_id: uuid.UUID, member_service: MemberService) -> None:
        await member_service.remove(user_id)


class InvitationsController(Controller):
    path = "/api/v1/invitations"
    tags = ["members"]

    @post(
        "/",
        operation_id="createInvitation",
        summary="Invite someone by e-mail (the one-time `token` is shown only in this answer)",
        guards=[admin_guard],
        responses=errors_for(401, 403, 409, 422),
    )
    async def create_invitation(
        self, data: InvitationCreate, invitation_service: InvitationService
    ) -> InvitationWithSecret:
        created = await invitation_service.create(data.email, data.role)
        shown = invitation_out(created.row)
        return InvitationWithSecret(**{f: getattr(shown, f) for f in Invitation.__struct_fields__}, token=created.token)

    @get(
        "/",
        operation_id="listInvitations",
        summary="Open invitations (not yet accepted, withdrawn or expired)",
        guards=[admin_guard],
        responses=errors_for(401, 403, 422),
    )
    async def list_invitations(
        self,
        invitation_service: InvitationService,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> InvitationPage:
        page = await invitation_service.page(cursor, limit)
        return InvitationPage(items=[invitation_out(r) for r in page.items], next_cursor=page.next_cursor)

    @delete(
        "/{invitation_id:uuid}",
        operation_id="revokeInvitation",
        summary="Withdraw an open invitation",
        guards=[admin_guard],
        responses=errors_for(401, 403, 404),
    )
    async def revoke_invitation(self, invitation_id: uuid.UUID, invitation_service: InvitationService) -> None:
        await invitation_service.revoke(invitation_id)

    @post(
        "/accept",
        operation_id="acceptInvitation",
        summary="Accept an invitation, logged in as the invited address; answers tokens for the organization",
        status_code=200,
        responses=errors_for(401, 403, 404, 409, 422),
    )
    async def accept_invitation(self, data: MembershipCreate, invitation_service: InvitationService) -> Membership:
        user, joined, tokens = await invitation_service.accept(data.token)
        return Membership(
            user=user_out(user),
            tenant=tenant_out(joined.tenant),
            role=joined.membership.role.value,
            tokens=tokens,
        )
