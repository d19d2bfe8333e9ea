"""The read-only guard: while an organization's trial is over or its subscription has ended, every write
answers a 402 `payment_required` problem — its data is kept and reads go on — except what it needs to pay
(`/api/v1/billing/…`), to sign in and out, and to revoke access (deleting API keys and members).

The state is read per organization at most every ``billing_access_cache_seconds`` per process, and only
for writes: reads never pay for it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from app.config import Settings
from app.db.engine import set_tenant
from app.domain.billing.services import PaymentRequiredError, ensure_writable
from app.lib.tokens import Principal

log = structlog.get_logger(__name__)
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_ALWAYS = ("/api/v1/billing/", "/api/v1/auth/")
_DELETES = ("/api/v1/api-keys/", "/api/v1/members/")
CACHE_SIZE = 10_000


def exempt(method: str, path: str) -> bool:
    return path.startswith(_ALWAYS) or (method == "DELETE" and path.startswith(_DELETES))


class BillingGuardMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.billing_enabled
        self.ttl = settings.billing_access_cache_seconds
        self._refusals: dict[uuid.UUID, tuple[str | None, float]] = {}

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        method = str(scope.get("method", "GET"))
        principal = scope.get("user")
        if (
            self.enabled
            and method not in _SAFE
            and isinstance(principal, Principal)
            and not exempt(method, scope["path"])
        ):
            refusal = await self._refusal(scope["app"].state, principal.tenant_id)
            if refusal is not None:
                raise PaymentRequiredError(refusal)
        await next_app(scope, receive, send)

    async def _refusal(self, state: Any, tenant_id: uuid.UUID) -> str | None:
        now = time.monotonic()
        cached = self._refusals.get(tenant_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        refusal: str | None = None
        async with state.sessionmaker() as session:
            await set_tenant(session, tenant_id)
            try:
                await ensure_writable(session, tenant_id, billing_enabled=True)
            except PaymentRequiredError as exc:
                refusal = exc.detail
        if self.ttl > 0:
            if len(self._refusals) >= CACHE_SIZE:
                self._refusals.clear()
            self._refusals[tenant_id] = (refusal, now + self.ttl)
        return refusal
