"""Use-cases of the API-keys area: create (the secret is returned once), list, read, revoke."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models.apikeys import ApiKey
from app.domain.api import FieldError
from app.domain.apikeys import keys
from app.domain.apikeys.repositories import ApiKeyRepository
from app.lib.clock import utcnow
from app.lib.errors import ConflictError, NotFoundError, ValidationError
from app.lib.ids import uuid7
from app.lib.tokens import Principal

MAX_ACTIVE_KEYS = 100


class ApiKeyLimitError(ConflictError):
    code = "api_key_limit"
    title = "Too many API keys"


@dataclass(frozen=True)
class CreatedKey:
    row: ApiKey
    key: str


def check_scopes(scopes: list[str]) -> list[str]:
    """Exactly ``["read"]`` or ``["read", "write"]`` (order-insensitive)."""
    wanted = set(scopes)
    if len(wanted) != len(scopes) or "read" not in wanted:
        raise ValidationError(
            'Scopes are ["read"] or ["read", "write"].',
            errors=[FieldError(field="scopes", message='expected ["read"] or ["read", "write"]')],
        )
    return sorted(wanted)


class ApiKeyService:
    def __init__(self, session: AsyncSession, principal: Principal, hash_secret: bytes) -> None:
        self.session = session
        self.principal = principal
        self.hash_secret = hash_secret
        self.keys = ApiKeyRepository(session, principal.tenant_id)

    async def create(self, name: str, scopes: list[str]) -> CreatedKey:
        scopes = check_scopes(scopes)
        if await self.keys.count_active() >= MAX_ACTIVE_KEYS:
            raise ApiKeyLimitError(f"An organization can hold at most {MAX_ACTIVE_KEYS} active API keys.")
        secret = keys.generate()
        row = self.keys.add(
            ApiKey(
                id=uuid7(),
                name=name.strip() or name,
                key_hash=keys.key_hash(self.hash_secret, secret),
                prefix=keys.display_prefix(secret),
                last_four=secret[-4:],
                scopes=scopes,
                created_by=self.principal.user_id,
            )
        )
        await self.session.flush()
        await self.session.refresh(row)
        return CreatedKey(row=row, key=secret)

    async def page(self, after: tuple[datetime, uuid.UUID] | None, limit: int, include_revoked: bool) -> list[ApiKey]:
        return await self.keys.page(after=after, limit=limit, include_revoked=include_revoked)

    async def get(self, key_id: uuid.UUID) -> ApiKey:
        row = await self.keys.get(key_id)
        if row is None:
            raise NotFoundError("No such API key.")
        return row

    async def revoke(self, key_id: uuid.UUID) -> ApiKey:
        """Idempotent: revoking a revoked key keeps its first revocation time."""
        row = await self.get(key_id)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            await self.session.flush()
        return row
