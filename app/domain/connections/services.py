"""Use-cases of the connections area."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import session_scope
from app.db.models import Connection, ConnectionStatus, Marketplace
from app.domain.billing.services import ensure_within_limit
from app.domain.connections.gateway import (
    CredentialCheck,
    InvalidCredentialsError,
    MarketplaceGateway,
    decode_credentials,
)
from app.domain.connections.repositories import ConnectionRepository
from app.domain.connections.repositories import all_tenant_ids as all_tenant_ids  # key rotation of other areas
from app.lib.clock import utcnow
from app.lib.crypto import CredentialCipher, InvalidToken
from app.lib.errors import NotFoundError
from app.lib.ids import uuid7


def encrypt_credentials(cipher: CredentialCipher, credentials: dict[str, str]) -> bytes:
    return cipher.encrypt(json.dumps(credentials, separators=(",", ":")).encode())


def decrypt_credentials(cipher: CredentialCipher, blob: bytes) -> dict[str, str]:
    return json.loads(cipher.decrypt(blob))


def _apply_check(conn: Connection, check: CredentialCheck) -> None:
    conn.token_type = check.token_type
    conn.token_expires_at = check.expires_at
    conn.token_categories = check.categories or None
    conn.missing_categories = check.missing_categories or None
    conn.last_checked_at = utcnow()
    conn.status = ConnectionStatus.ACTIVE
    conn.status_reason = (
        "The token lacks categories: " + ", ".join(check.missing_categories) if check.missing_categories else None
    )


class ConnectionService:
    def __init__(
        self,
        session: AsyncSession,
        tenant_id: uuid.UUID,
        cipher: CredentialCipher,
        gateway: MarketplaceGateway,
        *,
        billing_enabled: bool = False,
    ) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self.repo = ConnectionRepository(session, tenant_id)
        self.cipher = cipher
        self.gateway = gateway
        self.billing_enabled = billing_enabled

    async def get(self, connection_id: uuid.UUID) -> Connection:
        conn = await self.repo.get(connection_id)
        if conn is None:
            raise NotFoundError("No such connection.")
        return conn

    async def list(self) -> list[Connection]:
        return list(await self.repo.list(order_by=Connection.created_at))

    async def create(self, marketplace: str, name: str, raw_credentials: dict[str, str]) -> Connection:
        credentials = decode_credentials(marketplace, raw_credentials)
        await ensure_within_limit(
            self.session, self.tenant_id, "connections", await self.repo.count(), billing_enabled=self.billing_enabled
        )
        conn_id = uuid7()
        check = await self.gateway.check(marketplace, credentials, str(conn_id))
        conn = Connection(
            id=conn_id,
            marketplace=Marketplace(marketplace),
            name=name.strip(),
            credentials_encrypted=encrypt_credentials(self.cipher, credentials),
        )
        _apply_check(conn, check)
        self.repo.add(conn)
        await self.session.flush()
        await self.session.refresh(conn)
        return conn

    async def rename(self, connection_id: uuid.UUID, name: str) -> Connection:
        conn = await self.get(connection_id)
        conn.name = name.strip()
        await self.session.flush()
        return conn

    async def replace_credentials(self, connection_id: uuid.UUID, raw_credentials: dict[str, str]) -> Connection:
        conn = await self.get(connection_id)
        credentials = decode_credentials(conn.marketplace.value, raw_credentials)
        check = await self.gateway.check(conn.marketplace.value, credentials, str(conn.id))
        conn.credentials_encrypted = encrypt_credentials(self.cipher, credentials)
        _apply_check(conn, check)
        await self.session.flush()
        return conn

    async def check(self, connection_id: uuid.UUID) -> Connection:
        """Re-validate stored credentials; an invalid token marks the connection invalid (not an error)."""
        conn = await self.get(connection_id)
        credentials = decrypt_credentials(self.cipher, conn.credentials_encrypted)
        try:
            check = await self.gateway.check(conn.marketplace.value, credentials, str(conn.id))
        except InvalidCredentialsError as exc:
            conn.status = ConnectionStatus.INVALID
            conn.status_reason = exc.detail
            conn.last_checked_at = utcnow()
        else:
            _apply_check(conn, check)
        await self.session.flush()
        return conn

    async def delete(self, connection_id: uuid.UUID) -> None:
        """Delete the connection; its products, stock, history, orders and runs go with it (FK cascade)."""
        if not await self.repo.delete(connection_id):
            raise NotFoundError("No such connection.")

    def credentials_of(self, conn: Connection) -> dict[str, str]:
        return decrypt_credentials(self.cipher, conn.credentials_encrypted)


async def rotate_all_credentials(
    sessionmaker: async_sessionmaker[AsyncSession], cipher: CredentialCipher
) -> tuple[int, list[uuid.UUID]]:
    """Re-encrypt every connection's credentials under the primary key (`stock-tracker keys rotate`).

    Runs per tenant (row-level security applies to this path too); the tenant list comes from the audited
    system function ``st_tenant_ids()``.
    """
    async with session_scope(sessionmaker) as s:
        tenants = await all_tenant_ids(s)
    total = 0
    failed: list[uuid.UUID] = []
    for tenant_id in tenants:
        async with session_scope(sessionmaker, tenant_id) as s:
            connections = ConnectionRepository(s, tenant_id)
            for conn_id, blob in await connections.encrypted_credentials():
                try:
                    rotated = cipher.rotate(blob)
                except InvalidToken:  # no configured key opens it: report it, never drop it
                    failed.append(conn_id)
                    continue
                await connections.set_encrypted_credentials(conn_id, rotated)
                total += 1
    return total, failed


def connection_summary(conn: Connection) -> dict[str, Any]:
    return {"id": str(conn.id), "marketplace": conn.marketplace.value, "status": conn.status.value}
