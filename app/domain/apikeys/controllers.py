"""HTTP endpoints of the API-keys area (owners and admins manage keys; keys cannot manage keys)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, post
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models.apikeys import ApiKey as ApiKeyRow
from app.domain.accounts.repositories import TenantSelfRepository
from app.domain.api import admin_guard, decode_cursor, encode_cursor, errors_for
from app.domain.apikeys import keys, usage
from app.domain.apikeys.schemas import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyPage, ApiUsage
from app.domain.apikeys.services import ApiKeyService
from app.domain.billing.plans import effective_plan
from app.lib.clock import utcnow
from app.lib.tokens import Principal


def _out(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        last_four=row.last_four,
        scopes=list(row.scopes),  # type: ignore[arg-type]
        created_at=row.created_at,
        created_by=row.created_by,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def _service(request: Request[Any, Any, Any], session: AsyncSession, principal: Principal) -> ApiKeyService:
    settings = request.app.state.settings
    return ApiKeyService(session, principal, keys.hash_secret(settings.api_key_secret, settings.jwt_secret))


class ApiKeyController(Controller):
    path = "/api/v1/api-keys"
    tags = ["api-keys"]

    @post(
        "/",
        operation_id="createApiKey",
        summary="Create an API key (the secret is in `key`, shown only in this response)",
        guards=[admin_guard],
        responses=errors_for(401, 403, 409, 422),
    )
    async def create_key(
        self, request: Request[Any, Any, Any], data: ApiKeyCreate, db_session: AsyncSession, principal: Principal
    ) -> ApiKeyCreated:
        created = await _service(request, db_session, principal).create(data.name, list(data.scopes))
        return ApiKeyCreated(**{f: getattr(_out(created.row), f) for f in ApiKey.__struct_fields__}, key=created.key)

    @get(
        "/",
        operation_id="listApiKeys",
        summary="API keys of the organization (prefix and last four only; cursor pagination)",
        guards=[admin_guard],
        responses=errors_for(401, 403, 422),
    )
    async def list_keys(
        self,
        request: Request[Any, Any, Any],
        db_session: AsyncSession,
        principal: Principal,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        include_revoked: bool = False,
    ) -> ApiKeyPage:
        after = decode_cursor(cursor, datetime, uuid.UUID)
        rows = await _service(request, db_session, principal).page(after, limit + 1, include_revoked)
        next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
        return ApiKeyPage(items=[_out(r) for r in rows[:limit]], next_cursor=next_cursor)

    @get(
        "/usage",
        operation_id="getApiUsage",
        summary="API-key calls this month against the plan's quota",
        responses=errors_for(401),
    )
    async def get_usage(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, principal: Principal
    ) -> ApiUsage:
        settings = request.app.state.settings
        tenant = await TenantSelfRepository(db_session, principal.tenant_id).get()
        plan = effective_plan(
            tenant.plan if tenant else settings.billing_default_plan, billing_enabled=settings.billing_enabled
        )
        period = usage.period_of(utcnow())
        calls = await usage.api_calls(request.app.state.redis, principal.tenant_id, period)
        return ApiUsage(period=period, api_calls=calls, quota=plan.api_calls_per_month, plan=plan.code)

    @get(
        "/{key_id:uuid}",
        operation_id="getApiKey",
        summary="One API key",
        guards=[admin_guard],
        responses=errors_for(401, 403, 404),
    )
    async def get_key(
        self, request: Request[Any, Any, Any], key_id: uuid.UUID, db_session: AsyncSession, principal: Principal
    ) -> ApiKey:
        return _out(await _service(request, db_session, principal).get(key_id))

    @delete(
        "/{key_id:uuid}",
        operation_id="revokeApiKey",
        summary="Revoke an API key (takes effect within seconds on every API process)",
        guards=[admin_guard],
        responses=errors_for(401, 403, 404),
    )
    async def revoke_key(
        self, request: Request[Any, Any, Any], key_id: uuid.UUID, db_session: AsyncSession, principal: Principal
    ) -> None:
        row = await _service(request, db_session, principal).revoke(key_id)
        # This process forgets the key at once; the others within their cache's lifetime (seconds).
        resolver = getattr(request.app.state, "api_key_resolver", None)
        if resolver is not None:
            resolver.forget(row.key_hash)
