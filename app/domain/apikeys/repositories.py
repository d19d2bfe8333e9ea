"""Every SQL statement of the API-keys area."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.models import Tenant
from app.db.models.apikeys import ApiKey
from app.db.reads import read_one, read_rows
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

    async def rehash(self, key_id: uuid.UUID, old_hash: str, new_hash: str) -> None:
        """Store a key's hash under the current secret (it was found under a previous one)."""
        await self.update_where({"key_hash": new_hash}, ApiKey.id == key_id, ApiKey.key_hash == old_hash)

    async def revoke_created_by(self, user_id: uuid.UUID, at: datetime) -> list[tuple[uuid.UUID, str]]:
        """Revoke every active key ``user_id`` created here; (id, key hash) of each."""
        stmt = (
            update(ApiKey)
            .where(ApiKey.tenant_id == self.tenant_id, ApiKey.created_by == user_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(ApiKey.id, ApiKey.key_hash)
            .execution_options(synchronize_session=False)
        )
        return [(row[0], row[1]) for row in (await self.session.execute(stmt)).all()]

    async def tenant_plan(self) -> str | None:
        """The organization's plan code (its own row; row-level security keys it on ``id``)."""
        stmt = select(Tenant.plan).where(Tenant.id == self.tenant_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()


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

    # Many keys in one statement (the resolver's background refresh): the same function, once per hash.
    MANY_SQL = (
        "SELECT u.h, l.id, l.tenant_id, l.scopes, l.revoked, l.plan "
        "FROM unnest($1::text[]) AS u(h) CROSS JOIN LATERAL st_api_key_lookup(u.h) AS l"
    )

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def by_hash(self, key_hash: str) -> KeyRecord | None:
        row = await read_one(self.engine, self.SQL, key_hash)
        return None if row is None else _record(*row)

    async def by_hashes(self, key_hashes: list[str]) -> dict[str, KeyRecord]:
        """The keys that exist, by hash (absent: no such key)."""
        rows = await read_rows(self.engine, self.MANY_SQL, key_hashes)
        return {row[0]: _record(*row[1:]) for row in rows}


def _record(key_id: uuid.UUID, tenant_id: uuid.UUID, scopes: list[str], revoked: bool, plan: str) -> KeyRecord:
    return KeyRecord(id=key_id, tenant_id=tenant_id, scopes=frozenset(scopes), revoked=bool(revoked), plan=plan)
