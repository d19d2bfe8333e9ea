"""HTTP endpoints of the API-keys area (owners and admins manage keys; keys cannot manage keys)."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, delete, get, post
from litestar.params import Parameter

from app.db.models.apikeys import ApiKey as ApiKeyRow
from app.domain.api import admin_guard, errors_for
from app.domain.apikeys.schemas import ApiKey, ApiKeyCreate, ApiKeyPage, ApiKeyWithSecret, ApiUsage
from app.domain.apikeys.services import ApiKeyService


def api_key_out(row: ApiKeyRow) -> ApiKey:
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
    async def create_key(self, data: ApiKeyCreate, api_key_service: ApiKeyService) -> ApiKeyWithSecret:
        created = await api_key_service.create(data.name, list(data.scopes))
        shown = api_key_out(created.row)
        return ApiKeyWithSecret(**{f: getattr(shown, f) for f in ApiKey.__struct_fields__}, key=created.key)

    @get(
        "/",
        operation_id="listApiKeys",
        summary="API keys of the organization (prefix and last four only; cursor pagination)",
        guards=[admin_guard],
        responses=errors_for(401, 403, 422),
    )
    async def list_keys(
        self,
        api_key_service: ApiKeyService,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        include_revoked: bool = False,
    ) -> ApiKeyPage:
        page = await api_key_service.page(cursor, limit, include_revoked)
        return ApiKeyPage(items=[api_key_out(r) for r in page.items], next_cursor=page.next_cursor)

    @get(
        "/usage",
        operation_id="getApiUsage",
        summary="API-key calls this month against the plan's quota",
        responses=errors_for(401),
    )
    async def get_usage(self, api_key_service: ApiKeyService) -> ApiUsage:
        return await api_key_service.usage()

    @get(
        "/{key_id:uuid}",
        operation_id="getApiKey",
        summary="One API key",
        guards=[admin_guard],
        responses=errors_for(401, 403, 404),
    )
    async def get_key(self, key_id: uuid.UUID, api_key_service: ApiKeyService) -> ApiKey:
        return api_key_out(await api_key_service.get(key_id))

    @delete(
        "/{key_id:uuid}",
        operation_id="revokeApiKey",
        summary="Revoke an API key (refused from the next request on, in every API process)",
        guards=[admin_guard],
        responses=errors_for(401, 403, 404),
    )
    async def revoke_key(self, key_id: uuid.UUID, api_key_service: ApiKeyService) -> None:
        await api_key_service.revoke(key_id)
