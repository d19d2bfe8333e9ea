"""Use-cases of the API-keys area: create (the secret is returned once), list, read, revoke, usage."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.models.apikeys import ApiKey
from app.domain.apikeys import keys, usage
from app.domain.apikeys.repositories import ApiKeyRepository
from app.domain.apikeys.schemas import ApiUsage
from app.domain.billing.services import effective_plan, ensure_within_limit
from app.lib.clock import utcnow
from app.lib.errors import ConflictError, FieldError, NotFoundError, ValidationError
from app.lib.ids import uuid7
from app.lib.pagination import Page, paginate
from app.lib.tokens import Principal, api_key_revocation, queue_revocation

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
    """``forget(key_hash)`` drops a revoked key from this process's key cache (the others expire theirs)."""

    def __init__(
        self,
        session: AsyncSession,
        principal: Principal,
        settings: Settings,
        redis: Redis,
        forget: Callable[[str], None] | None = None,
    ) -> None:
        self.session = session
        self.principal = principal
        self.settings = settings
        self.redis = redis
        self.forget = forget
        self.hash_secret = keys.hash_secret(settings.api_key_secret, settings.jwt_secret)
        self.keys = ApiKeyRepository(session, principal.tenant_id)

    async def create(self, name: str, scopes: list[str]) -> CreatedKey:
        scopes = check_scopes(scopes)
        active = await self.keys.count_active()
        if active >= MAX_ACTIVE_KEYS:
            raise ApiKeyLimitError(f"An organization can hold at most {MAX_ACTIVE_KEYS} active API keys.")
        await ensure_within_limit(
            self.session, self.principal.tenant_id, "api_keys", active, billing_enabled=self.settings.billing_enabled
        )
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

    async def page(self, cursor: str | None, limit: int, include_revoked: bool) -> Page[ApiKey]:
        """Keys in the order they were created."""
        return await paginate(
            lambda after, n: self.keys.page(after=after, limit=n, include_revoked=include_revoked),
            cursor=cursor,
            limit=limit,
            key=lambda row: (row.created_at, row.id),
            types=(datetime, uuid.UUID),
        )

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
        # Every process refuses it from the next request on: the revocation list is checked by the request
        # gate (published once this transaction commits); this process also drops its cached lookup.
        queue_revocation(self.session.info, api_key_revocation(row.id))
        if self.forget is not None:
            self.forget(row.key_hash)
        return row

    async def usage(self) -> ApiUsage:
        """API-key calls this calendar month (the counter the quota is enforced on) and the plan's quota."""
        code = await self.keys.tenant_plan()
        plan = effective_plan(code or self.settings.billing_default_plan, billing_enabled=self.settings.billing_enabled)
        period = usage.period_of(utcnow())
        calls = await usage.api_calls(self.redis, self.principal.tenant_id, period)
        return ApiUsage(period=period, api_calls=calls, quota=plan.api_calls_per_month, plan=plan.code)


def api_call_counter(redis: Redis) -> Callable[[uuid.UUID, datetime], Awaitable[tuple[str, int]]]:
    """The monthly API-call counter as billing reads it: (period ``YYYY-MM``, calls counted) for a moment —
    the very counter the quota is enforced on, so the meter and the quota agree."""

    async def count(tenant_id: uuid.UUID, at: datetime) -> tuple[str, int]:
        period = usage.period_of(at)
        return period, await usage.api_calls(redis, tenant_id, period)

    return count


async def revoke_keys_created_by(
    session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID, forget: Callable[[str], None] | None = None
) -> int:
    """When a member leaves, the keys they created stop working with them (revoked, on the revocation list)."""
    revoked = await ApiKeyRepository(session, tenant_id).revoke_created_by(user_id, utcnow())
    for key_id, key_hash in revoked:
        queue_revocation(session.info, api_key_revocation(key_id))
        if forget is not None:
            forget(key_hash)
    return len(revoked)
