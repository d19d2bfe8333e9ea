"""HTTP endpoints of the accounts area: auth, me, members."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.accounts.schemas import (
    LoginRequest,
    LogoutRequest,
    Me,
    Member,
    MemberCreate,
    MemberPage,
    MemberUpdate,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    TenantOut,
    TokenPair,
    UserOut,
)
from app.domain.accounts.services import AccountService, MemberService
from app.domain.api import admin_guard, decode_cursor, encode_cursor, errors_for
from app.lib.tokens import Principal


def _service(request: Request, session: AsyncSession) -> AccountService:
    settings = request.app.state.settings
    return AccountService(session, request.app.state.token_codec, settings.refresh_token_ttl_seconds)


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post(
        "/register",
        operation_id="register",
        summary="Create an organization and its owner",
        responses=errors_for(409, 422),
    )
    async def register(self, request: Request, data: RegisterRequest, db_session: AsyncSession) -> RegisterResponse:
        reg = await _service(request, db_session).register(data.email, data.password, data.organization_name)
        return RegisterResponse(
            user=UserOut(id=reg.user.id, email=reg.user.email, created_at=reg.user.created_at),
            tenant=TenantOut(
                id=reg.tenant.id,
                name=reg.tenant.name,
                plan=reg.tenant.plan,
                timezone=reg.tenant.timezone,
                created_at=reg.tenant.created_at,
            ),
            role="owner",
            tokens=reg.tokens,
        )

    @post(
        "/login",
        operation_id="login",
        summary="Exchange email and password for tokens",
        status_code=200,
        responses=errors_for(401, 422),
    )
    async def login(self, request: Request, data: LoginRequest, db_session: AsyncSession) -> TokenPair:
        return await _service(request, db_session).login(data.email, data.password, data.tenant_id)

    @post(
        "/refresh",
        operation_id="refreshTokens",
        summary="Rotate a refresh token",
        status_code=200,
        responses=errors_for(401, 422),
    )
    async def refresh(self, request: Request, data: RefreshRequest, db_session: AsyncSession) -> TokenPair:
        return await _service(request, db_session).refresh(data.refresh_token)

    @post(
        "/logout",
        operation_id="logout",
        summary="Revoke a refresh token and its family",
        status_code=204,
        responses=errors_for(422),
    )
    async def logout(self, request: Request, data: LogoutRequest, db_session: AsyncSession) -> None:
        await _service(request, db_session).logout(data.refresh_token)


class MeController(Controller):
    path = "/api/v1/me"
    tags = ["auth"]

    @get(
        "/",
        operation_id="getMe",
        summary="The signed-in user, organization and role",
        responses=errors_for(401),
    )
    async def me(self, db_session: AsyncSession, principal: Principal) -> Me:
        user, tenant, role = await MemberService(db_session, principal).me()
        return Me(
            user=UserOut(id=user.id, email=user.email, created_at=user.created_at),
            tenant=TenantOut(
                id=tenant.id,
                name=tenant.name,
                plan=tenant.plan,
                timezone=tenant.timezone,
                created_at=tenant.created_at,
            ),
            role=role,  # type: ignore[arg-type]
        )


class MembersController(Controller):
    path = "/api/v1/members"
    tags = ["members"]

    @get("/", operation_id="listMembers", summary="Members of the organization", responses=errors_for(401, 422))
    async def list_members(
        self,
        db_session: AsyncSession,
        principal: Principal,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> MemberPage:
        after = decode_cursor(cursor, datetime, uuid.UUID)
        rows = await MemberService(db_session, principal).list(after, limit + 1)
        items = [Member(user_id=u.id, email=u.email, role=m.role.value, joined_at=m.created_at) for m, u in rows]
        next_cursor = None
        if len(rows) > limit:
            items = items[:limit]
            last = rows[limit - 1][0]
            next_cursor = encode_cursor(last.created_at, last.id)
        return MemberPage(items=items, next_cursor=next_cursor)

    @post(
        "/",
        operation_id="addMember",
        summary="Add a registered user to the organization",
        guards=[admin_guard],
        responses=errors_for(401, 403, 404, 409, 422),
    )
    async def add_member(self, data: MemberCreate, db_session: AsyncSession, principal: Principal) -> Member:
        m, u = await MemberService(db_session, principal).add(data.email, data.role)
        return Member(user_id=u.id, email=u.email, role=m.role.value, joined_at=m.created_at)

    @patch(
        "/{user_id:uuid}",
        operation_id="updateMemberRole",
        summary="Change a member's role",
        guards=[admin_guard],
        responses=errors_for(401, 403, 404, 409, 422),
    )
    async def update_member(
        self, user_id: uuid.UUID, data: MemberUpdate, db_session: AsyncSession, principal: Principal
    ) -> Member:
        m, u = await MemberService(db_session, principal).change_role(user_id, data.role)
        return Member(user_id=u.id, email=u.email, role=m.role.value, joined_at=m.created_at)

    @delete(
        "/{user_id:uuid}",
        operation_id="removeMember",
        summary="Remove a member",
        guards=[admin_guard],
        responses=errors_for(401, 403, 404, 409),
    )
    async def remove_member(self, user_id: uuid.UUID, db_session: AsyncSession, principal: Principal) -> None:
        await MemberService(db_session, principal).remove(user_id)
