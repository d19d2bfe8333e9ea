"""HTTP endpoints of the accounts area: auth, me, members."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.params import Parameter

from app.db.models import Membership
from app.db.models import Tenant as TenantRow
from app.db.models import User as UserRow
from app.domain.accounts.schemas import (
    Me,
    Member,
    MemberCreate,
    MemberPage,
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
from app.domain.accounts.services import AccountService, MemberService
from app.domain.api import admin_guard, errors_for


def user_out(row: UserRow) -> User:
    return User(id=row.id, email=row.email, created_at=row.created_at)


def tenant_out(row: TenantRow) -> Tenant:
    return Tenant(id=row.id, name=row.name, plan=row.plan, timezone=row.timezone, created_at=row.created_at)


def member_out(membership: Membership, user: UserRow) -> Member:
    return Member(user_id=user.id, email=user.email, role=membership.role.value, joined_at=membership.created_at)


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post(
        "/register",
        operation_id="register",
        summary="Create an organization and its owner",
        responses=errors_for(409, 422),
    )
    async def register(self, data: RegistrationCreate, account_service: AccountService) -> Registration:
        new = await account_service.register(data.email, data.password, data.organization_name)
        return Registration(user=user_out(new.user), tenant=tenant_out(new.tenant), role="owner", tokens=new.tokens)

    @post(
        "/login",
        operation_id="login",
        summary="Exchange email and password for tokens",
        status_code=200,
        responses=errors_for(401, 422),
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
        summary="Revoke a refresh token and its family",
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

    @post(
        "/",
        operation_id="addMember",
        summary="Add a registered user to the organization",
        guards=[admin_guard],
        responses=errors_for(401, 403, 404, 409, 422),
    )
    async def add_member(self, data: MemberCreate, member_service: MemberService) -> Member:
        return member_out(*await member_service.add(data.email, data.role))

    @patch(
        "/{user_id:uuid}",
        operation_id="updateMemberRole",
        summary="Change a member's role",
        guards=[admin_guard],
        responses=errors_for(401, 403, 404, 409, 422),
    )
    async def update_member(self, user_id: uuid.UUID, data: MemberUpdate, member_service: MemberService) -> Member:
        return member_out(*await member_service.change_role(user_id, data.role))

    @delete(
        "/{user_id:uuid}",
        operation_id="removeMember",
        summary="Remove a member",
        guards=[admin_guard],
        responses=errors_for(401, 403, 404, 409),
    )
    async def remove_member(self, user_id: uuid.UUID, member_service: MemberService) -> None:
        await member_service.remove(user_id)
