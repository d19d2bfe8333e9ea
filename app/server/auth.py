"""Bearer authentication (user JWTs and API keys) and the brief, bounded cache behind API-key lookups."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt
import structlog
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db.engine import set_tenant
from app.domain.apikeys import keys
from app.domain.apikeys.repositories import ApiKeyLookup, ApiKeyRepository, KeyRecord
from app.domain.apikeys.rotation import find_under_previous
from app.lib.clock import utcnow
from app.lib.errors import AuthenticationError, PermissionDeniedError
from app.lib.tokens import AccessTokenCodec, Principal

log = structlog.get_logger(__name__)

# Routes that do not take a bearer token (auth itself, health, metrics, docs, webhooks in, sandbox).
PUBLIC_PATHS = [
    r"^/api/v1/auth/(register|login|refresh|logout)$",
    r"^/health/",
    r"^/metrics$",
    r"^/schema",
    r"^/sandbox",
    r"^/telegram/",
    r"^/api/v1/billing/stripe/webhook$",
    r"^/api/v1/billing/plans$",
    # The operator's routes take the operator token, never a tenant's (their own guard checks it).
    r"^/api/v1/admin/",
    # The daily report's signed download link is its own credential (app/domain/reports/services/_links.py).
    r"^/api/v1/reports/download$",
]
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="api"'}
# A key's lookup is reused this long. A revocation is refused at once anyway (the request gate reads the
# revocation list, app/lib/tokens.py); this bounds only how long a process could miss one Redis lost.
KEY_CACHE_SECONDS = 5.0
KEY_CACHE_SIZE = 10_000
# last_used_at is written at most this often per key and process (not on every request).
TOUCH_EVERY_SECONDS = 60.0


# Cached keys used within this long are refreshed in the background, all in one statement; others are dropped.
KEY_IDLE_SECONDS = 60.0


@dataclass(slots=True)
class _Entry:
    record: KeyRecord | None  # None: no such key (cached too, so junk keys cannot hammer the database)
    expires: float
    touched: float = field(default=-1e18)
    used: float = 0.0  # monotonic time of the last request with this key


class ApiKeyResolver:
    """Keyed hash → key record, through the SECURITY DEFINER lookup, cached in-process for a few seconds.

    A key seen for the first time is looked up at once. After that a background task re-reads every key
    used in the last minute, all in one statement, every ``ttl / 2`` seconds and extends their entries: the
    database sees one query per process per refresh however many keys are in use, and a revocation still
    reaches every process within ``ttl`` (an entry the refresher could not renew expires and is looked up
    again on its next use).
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        hash_secret: bytes,
        engine: AsyncEngine,
        *,
        ttl: float = KEY_CACHE_SECONDS,
        max_entries: int = KEY_CACHE_SIZE,
        previous_hash_secrets: Sequence[bytes] = (),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.engine = engine
        self.hash_secret = hash_secret
        self.previous_hash_secrets = previous_hash_secrets  # secret rotation: tried when the current hash misses
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[KeyRecord | None]] = {}
        self._refresher: asyncio.Task[None] | None = None
        self._digests: dict[str, str] = {}

    def forget(self, key_hash: str) -> None:
        self._cache.pop(key_hash, None)

    async def refresh(self) -> int:
        """Re-read every recently used cached key in one statement; drop idle ones. Returns how many."""
        now = time.monotonic()
        live = [digest for digest, entry in self._cache.items() if entry.used > now - KEY_IDLE_SECONDS]
        for digest in [d for d, e in self._cache.items() if e.used <= now - KEY_IDLE_SECONDS]:
            del self._cache[digest]
        if not live:
            return 0
        records = await ApiKeyLookup(self.engine).by_hashes(live)
        expires = time.monotonic() + self.ttl
        for digest in live:
            entry = self._cache.get(digest)
            if entry is not None:
                entry.record = records.get(digest)
                entry.expires = expires
        return len(live)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 2)
            try:
                await self.refresh()
            except Exception as exc:  # entries then expire on their own and are looked up one by one
                log.warning("api_key.refresh_failed", error=type(exc).__name__)

    async def aclose(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher

    async def resolve(self, token: str) -> tuple[KeyRecord, _Entry]:
        digest = self._digests.get(token)
        if digest is None:
            if not keys.well_formed(token):
                raise AuthenticationError("The API key is not valid.", headers=_CHALLENGE)
            digest = keys.key_hash(self.hash_secret, token)
            if len(self._digests) >= self.max_entries:
                self._digests.clear()  # rare: this many distinct keys in one process; start over
            # Well-formed key → its keyed hash, so a key in use is checksummed and hashed once per process
            # (the same exposure as the request itself: the key is in this process's memory either way).
            self._digests[token] = digest
        now = time.monotonic()
        entry = self._cache.get(digest)
        if entry is None or entry.expires <= now:
            record = await self._lookup(digest)
            if record is None and self.previous_hash_secrets:
                record = await find_under_previous(
                    self.engine, self.sessionmaker, token, digest, self.previous_hash_secrets
                )
            entry = _Entry(record=record, expires=now + self.ttl, touched=entry.touched if entry else -1e18)
            self._cache[digest] = entry
            self._cache.move_to_end(digest)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
            if self._refresher is None or self._refresher.done():
                self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())
        entry.used = now
        if entry.record is None:
            raise AuthenticationError("The API key is not valid.", headers=_CHALLENGE)
        if entry.record.revoked:
            raise AuthenticationError("The API key has been revoked.", headers=_CHALLENGE)
        return entry.record, entry

    async def _lookup(self, digest: str) -> KeyRecord | None:
        # Concurrent first requests with one key share one database round trip.
        pending = self._inflight.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[KeyRecord | None] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            record = await ApiKeyLookup(self.engine).by_hash(digest)
            future.set_result(record)
            return record
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) re-raise it
            raise
        finally:
            del self._inflight[digest]

    async def touch(self, record: KeyRecord, entry: _Entry) -> None:
        """Record ``last_used_at`` at most once a minute per key and process; never fails the request."""
        now = time.monotonic()
        if now - entry.touched < TOUCH_EVERY_SECONDS:
            return
        entry.touched = now
        try:
            async with self.sessionmaker() as session:
                await set_tenant(session, record.tenant_id)
                await ApiKeyRepository(session, record.tenant_id).touch(record.id, utcnow())
                await session.commit()
        except Exception as exc:
            log.warning("api_key.touch_failed", error=type(exc).__name__)


class TokenCache:
    """Verified access tokens → principal, per process, until each token's own expiry.

    HS256 verification is the costliest step of an authenticated request that is otherwise served from the
    cache; a token is verified once per process and then recognised by exact match. The JWT's ``exp`` still
    applies (checked on every use), and the cache is bounded.
    """

    def __init__(self, codec: AccessTokenCodec, max_entries: int = 10_000) -> None:
        self.codec = codec
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Principal, float]] = {}

    def decode(self, token: str) -> Principal:
        found = self._entries.get(token)
        now = time.time()
        if found is not None and found[1] > now:
            return found[0]
        principal = self.codec.decode(token)
        # The signature was just verified: read the expiry without doing it again.
        expires = float(jwt.decode(token, options={"verify_signature": False})["exp"])
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # rare: a process seeing 10 000 live tokens starts over
        self._entries[token] = (principal, expires)
        return principal


def api_key_principal(record: KeyRecord) -> Principal:
    return Principal(
        tenant_id=record.tenant_id, user_id=None, role="api_key", kind="api_key", scopes=record.scopes, key_id=record.id
    )


def _authorization(scope: Any) -> str:
    # Straight from the raw header list: building the Headers mapping costs more than the scan.
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return str(value.decode("latin-1"))
    return ""


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        header = _authorization(connection.scope)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("Send `Authorization: Bearer <token>`.", headers=_CHALLENGE)
        state = connection.scope.setdefault("state", {})
        if keys.looks_like_key(token):
            resolver: ApiKeyResolver = connection.app.state.api_key_resolver
            record, entry = await resolver.resolve(token)
            principal = api_key_principal(record)
            # Read keys never change anything, whatever a handler's own guards say.
            if "write" not in record.scopes and connection.scope.get("method", "GET") not in _SAFE_METHODS:
                raise PermissionDeniedError("This API key is read-only; create a key with the `write` scope.")
            await resolver.touch(record, entry)
            state["plan"] = record.plan
        else:
            tokens: TokenCache = connection.app.state.token_cache
            principal = tokens.decode(token)
        state["tenant_id"] = str(principal.tenant_id)
        return AuthenticationResult(user=principal, auth=token)
