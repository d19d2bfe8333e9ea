"""Every SQL statement of the API-keys area."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.models.apikeys import ApiKey
from app.db.reads import read_one
from app.db.repository import TenantRepository


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey

    async def page(
        self, *, after: tuple[datetime, uuid.UUID] | None, limit: int, include_revoked: bool
    ) -> list[ApiKey]:
        stmt = self.select().order_by(ApiKey.created_at, ApiKey.id).limit(limit)
        if not include_revoked:
            stmt = stmt.where(ApiKey.revoked_at.is_(None))
        if after is not None:
            stmt = stmt.where(tuple_(ApiKey.created_at, ApiKey.id) > tuple_(*after))
        return list((await self.session.execute(stmt)).scalars().all())

    async def count_active(self) -> int:
        return await self.count(ApiKey.revoked_at.is_(None))

    async def touch(self, key_id: uuid.UUID, at: datetime) -> None:
        await self.update_where({"last_used_at": at}, ApiKey.id == key_id)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: uuid.UUID
    tenant_id: uuid.UUID
    scopes: frozenset[str]
    revoked: bool
    plan: str


class ApiKeyLookup:
    """Key → tenant before any tenant is known, only through the audited SECURITY DEFINER function.

    Runs on every API-key cache miss (each key every few seconds per process), so it is one statement on
    a raw pooled connection (``app.db.reads.read_one``) rather than an ORM session and transaction.
    """

    SQL = "SELECT id, tenant_id, scopes, revoked, plan FROM st_api_key_lookup($1)"

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def by_hash(self, key_hash: str) -> KeyRecord | None:
        row = await read_one(self.engine, self.SQL, key_hash)
        if row is None:
            return None
        return KeyRecord(id=row[0], tenant_id=row[1], scopes=frozenset(row[2]), revoked=bool(row[3]), plan=row[4])
