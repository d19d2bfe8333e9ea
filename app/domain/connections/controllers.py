"""HTTP endpoints for marketplace connections."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Connection
from app.domain.api import errors_for, write_guard
from app.domain.connections.schemas import (
    ConnectionCreate,
    ConnectionOut,
    ConnectionPage,
    ConnectionUpdate,
    CredentialsReplace,
    TokenInfoOut,
    WildberriesConnectionCreate,
)
from app.domain.connections.services import ConnectionService
from app.lib.tokens import Principal


def to_out(conn: Connection) -> ConnectionOut:
    token = None
    if conn.marketplace.value == "wildberries":
        token = TokenInfoOut(
            type=conn.token_type,
            expires_at=conn.token_expires_at,
            categories=list(conn.token_categories or []),
            missing_categories=list(conn.missing_categories or []),
        )
    return ConnectionOut(
        id=conn.id,
        marketplace=conn.marketplace.value,
        name=conn.name,
        status=conn.status.value,
        status_reason=conn.status_reason,
        token=token,
        last_checked_at=conn.last_checked_at,
        last_sync_at=conn.last_sync_at,
        last_success_at=conn.last_success_at,
        last_sync_status=conn.last_sync_status,
        created_at=conn.created_at,
    )


def service(request: Request[Any, Any, Any], session: AsyncSession, principal: Principal) -> ConnectionService:
    state = request.app.state
    return ConnectionService(session, principal.tenant_id, state.cipher, state.gateway)


class ConnectionController(Controller):
    path = "/api/v1/connections"
    tags = ["connections"]

    @post(
        "/",
        operation_id="createConnection",
        summary="Connect a marketplace account (credentials are checked)",
        guards=[write_guard],
        responses=errors_for(401, 403, 422, 502),
    )
    async def create(
        self, request: Request[Any, Any, Any], data: ConnectionCreate, db_session: AsyncSession, principal: Principal
    ) -> ConnectionOut:
        marketplace = "wildberries" if isinstance(data, WildberriesConnectionCreate) else "ozon"
        credentials = msgspec.to_builtins(data.credentials)
        conn = await service(request, db_session, principal).create(marketplace, data.name, credentials)
        return to_out(conn)

    @get("/", operation_id="listConnections", summary="Marketplace connections", responses=errors_for(401))
    async def list_connections(
        self, request: Request[Any, Any, Any], db_session: AsyncSession, principal: Principal
    ) -> ConnectionPage:
        return ConnectionPage(items=[to_out(c) for c in await service(request, db_session, principal).list()])

    @get(
        "/{connection_id:uuid}", operation_id="getConnection", summary="One connection", responses=errors_for(401, 404)
    )
    async def get_connection(
        self, request: Request[Any, Any, Any], connection_id: uuid.UUID, db_session: AsyncSession, principal: Principal
    ) -> ConnectionOut:
        return to_out(await service(request, db_session, principal).get(connection_id))

    @patch(
        "/{connection_id:uuid}",
        operation_id="renameConnection",
        summary="Rename a connection",
        guards=[write_guard],
        responses=errors_for(401, 403, 404, 422),
    )
    async def rename(
        self,
        request: Request[Any, Any, Any],
        connection_id: uuid.UUID,
        data: ConnectionUpdate,
        db_session: AsyncSession,
        principal: Principal,
    ) -> ConnectionOut:
        return to_out(await service(request, db_session, principal).rename(connection_id, data.name))

    @put(
        "/{connection_id:uuid}/credentials",
        operation_id="replaceConnectionCredentials",
        summary="Replace the credentials (checked first)",
        guards=[write_guard],
        responses=errors_for(401, 403, 404, 422, 502),
    )
    async def replace_credentials(
        self,
        request: Request[Any, Any, Any],
        connection_id: uuid.UUID,
        data: CredentialsReplace,
        db_session: AsyncSession,
        principal: Principal,
    ) -> ConnectionOut:
        svc = service(request, db_session, principal)
        return to_out(await svc.replace_credentials(connection_id, data.credentials))

    @post(
        "/{connection_id:uuid}/check",
        operation_id="checkConnection",
        status_code=200,
        summary="Re-check the stored credentials with the marketplace",
        guards=[write_guard],
        responses=errors_for(401, 403, 404, 502),
    )
    async def check(
        self, request: Request[Any, Any, Any], connection_id: uuid.UUID, db_session: AsyncSession, principal: Principal
    ) -> ConnectionOut:
        return to_out(await service(request, db_session, principal).check(connection_id))

    @delete(
        "/{connection_id:uuid}",
        operation_id="deleteConnection",
        summary="Delete a connection and all of its data",
        guards=[write_guard],
        responses=errors_for(401, 403, 404),
    )
    async def delete_connection(
        self, request: Request[Any, Any, Any], connection_id: uuid.UUID, db_session: AsyncSession, principal: Principal
    ) -> None:
        await service(request, db_session, principal).delete(connection_id)
