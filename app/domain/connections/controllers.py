"""HTTP endpoints for marketplace connections."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, delete, get, patch, post, put

from app.db.models import Connection as ConnectionRow
from app.domain.api import errors_for, write_guard
from app.domain.connections.schemas import (
    Connection,
    ConnectionCreate,
    ConnectionCredentialsUpdate,
    ConnectionPage,
    ConnectionUpdate,
    TokenInfo,
    WildberriesConnectionCreate,
)
from app.domain.connections.services import ConnectionService


def connection_out(conn: ConnectionRow) -> Connection:
    token = None
    if conn.marketplace.value == "wildberries":
        token = TokenInfo(
            type=conn.token_type,
            expires_at=conn.token_expires_at,
            categories=list(conn.token_categories or []),
            missing_categories=list(conn.missing_categories or []),
        )
    return Connection(
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
        last_attempt_at=conn.last_attempt_at,
        last_outcome=conn.last_outcome,
        created_at=conn.created_at,
    )


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
    async def create(self, data: ConnectionCreate, connection_service: ConnectionService) -> Connection:
        marketplace = "wildberries" if isinstance(data, WildberriesConnectionCreate) else "ozon"
        credentials = msgspec.to_builtins(data.credentials)
        return connection_out(await connection_service.create(marketplace, data.name, credentials))

    @get("/", operation_id="listConnections", summary="Marketplace connections", responses=errors_for(401))
    async def list_connections(self, connection_service: ConnectionService) -> ConnectionPage:
        return ConnectionPage(items=[connection_out(c) for c in await connection_service.list()])

    @get(
        "/{connection_id:uuid}", operation_id="getConnection", summary="One connection", responses=errors_for(401, 404)
    )
    async def get_connection(self, connection_id: uuid.UUID, connection_service: ConnectionService) -> Connection:
        return connection_out(await connection_service.get(connection_id))

    @patch(
        "/{connection_id:uuid}",
        operation_id="renameConnection",
        summary="Rename a connection",
        guards=[write_guard],
        responses=errors_for(401, 403, 404, 422),
    )
    async def rename(
        self, connection_id: uuid.UUID, data: ConnectionUpdate, connection_service: ConnectionService
    ) -> Connection:
        return connection_out(await connection_service.rename(connection_id, data.name))

    @put(
        "/{connection_id:uuid}/credentials",
        operation_id="replaceConnectionCredentials",
        summary="Replace the credentials (checked first)",
        guards=[write_guard],
        responses=errors_for(401, 403, 404, 422, 502),
    )
    async def replace_credentials(
        self, connection_id: uuid.UUID, data: ConnectionCredentialsUpdate, connection_service: ConnectionService
    ) -> Connection:
        return connection_out(await connection_service.replace_credentials(connection_id, data.credentials))

    @post(
        "/{connection_id:uuid}/check",
        operation_id="checkConnection",
        status_code=200,
        summary="Re-check the stored credentials with the marketplace",
        guards=[write_guard],
        responses=errors_for(401, 403, 404, 502),
    )
    async def check(self, connection_id: uuid.UUID, connection_service: ConnectionService) -> Connection:
        return connection_out(await connection_service.check(connection_id))

    @delete(
        "/{connection_id:uuid}",
        operation_id="deleteConnection",
        summary="Delete a connection and all of its data",
        guards=[write_guard],
        responses=errors_for(401, 403, 404),
    )
    async def delete_connection(self, connection_id: uuid.UUID, connection_service: ConnectionService) -> None:
        await connection_service.delete(connection_id)
