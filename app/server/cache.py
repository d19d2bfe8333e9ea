"""Tenant-versioned response cache for hot reads, with ETag / If-None-Match → 304.

A route opts in with ``opt={"cache": "<name>"}``. For a GET by an authenticated principal the middleware
looks up, in one round trip (``MGET``), the tenant's cache *version* and the entry for this route, path and
query. An entry records the version it was built under and is served only while that is still the
tenant's version; ``bump_tenant_cache_version`` (called after a finished sync, or anything else that
changes catalogue or stock data) replaces the version, so no page built before the change is served after
it. The version is read *before* the handler reads the database, so an entry is never tagged with a version
newer than its data. Any successful write request of the tenant through the API (POST/PUT/PATCH/DELETE)
bumps the version too, so API-driven changes need no extra call. Entries expire after ``CACHE_TTL_SECONDS``
whatever happens.

Each API process also keeps its own copy of the entries it served (``LocalEntries``, a byte-bounded LRU),
checked against the same version: the request gate then reads no entry from Redis at all — its one script
call returns the version, and a local copy built under it is served. A bump makes local copies stale exactly
as it makes Redis's (the version they carry no longer matches), so nothing here can serve an older page than
Redis would.

Keys (one hash tag per tenant, so a tenant's keys share a cluster slot):
``cache:v1:{<tenant>}:version`` → 16 hex chars (random, never a counter: a lost or evicted version key can
never make an old entry current again) and ``cache:v1:{<tenant>}:<name>:<sha256(path?query sorted by name)[:32]>``
→ version (16 bytes) + ETag (32 bytes) + JSON body.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.lib.cache_version import VERSION_LEN, bump_tenant_cache_version, version_key
from app.lib.tokens import Principal
from app.observability.metrics import instruments
from app.server.gate import CacheProbe

log = structlog.get_logger(__name__)

CACHE_TTL_SECONDS = 300
# This process's copies of entries: a byte budget (the API worker's RSS target is 150 MB).
LOCAL_CACHE_BYTES = 32 * 2**20
_VERSION_LEN = VERSION_LEN
_ETAG_LEN = 32
_HEAD = _VERSION_LEN + _ETAG_LEN
_REDIS_DOWN = (RedisError, OSError, asyncio.TimeoutError)
_CACHE_CONTROL = (b"cache-control", b"private, no-cache")
_VARY = (b"vary", b"Authorization")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def entry_key(tenant_id: uuid.UUID | str, name: str, path: str, query: str) -> str:
    digest = hashlib.sha256(f"{path}?{query}".encode()).hexdigest()[:32]
    return f"cache:v1:{{{tenant_id}}}:{name}:{digest}"


async def _current_version(redis: Redis, tenant_id: uuid.UUID | str) -> bytes:
    key = version_key(tenant_id)
    await redis.set(key, secrets.token_hex(_VERSION_LEN // 2), nx=True)
    value = await redis.get(key)
    return bytes(value or b"")


def etag_of(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=_ETAG_LEN // 2).hexdigest().encode()


def _normalized_query(raw: bytes) -> str:
    # Sorted by name only (a stable sort): ``?a=1&b=2`` and ``?b=2&a=1`` share an entry, but the values of a
    # repeated parameter keep their order (``?a=1&a=2`` is not ``?a=2&a=1``: a list filter may depend on it).
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return urlencode(sorted(pairs, key=lambda pair: pair[0]))


@functools.lru_cache(maxsize=8192)
def _request_entry_key(tenant_id: uuid.UUID, name: str, path: str, raw_query: bytes) -> str:
    # Clients repeat the same few URLs; parsing, sorting and hashing the query once per distinct URL is enough.
    return entry_key(tenant_id, name, path, _normalized_query(raw_query))


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def etag_matches(if_none_match: bytes | None, etag: bytes) -> bool:
    """Weak comparison (RFC 9110 §13.1.2): ``W/`` prefixes are ignored; ``*`` matches anything."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(b","):
        candidate = candidate.strip()
        if candidate == b"*" or candidate.removeprefix(b"W/").strip(b'"') == etag:
            return True
    return False


class LocalEntries:
    """Entries (version + ETag + body) this process served, least recently used out past ``max_bytes``; each
    expires with the Redis entry's TTL. Served only when its version is the tenant's current one."""

    def __init__(self, max_bytes: int = LOCAL_CACHE_BYTES, ttl: float = CACHE_TTL_SECONDS) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.size = 0
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[1] < time.monotonic():
            self.drop(key)
            return None
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_bytes // 8:  # one huge page must not flush everything else
            return
        self.drop(key)
        self._entries[key] = (value, time.monotonic() + self.ttl)
        self.size += len(value)
        while self.size > self.max_bytes:
            _, (old, _) = self._entries.popitem(last=False)
            self.size -= len(old)

    def drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self.size -= len(found[0])


# One per process (entries are keyed by tenant and carry the version they were built under).
LOCAL = LocalEntries()

PREFETCH_STATE = "cache_prefetch"
_PLAN_STATE = "cache_plan"


@dataclass(frozen=True, slots=True)
class CachePlan:
    """How the cache takes part in one GET."""

    name: str
    entry_key: str
    lookup: bool  # serve a current entry (False: the client sent no-cache / no-store)
    store: bool  # keep what the handler answers (False: no-store)
    local: bytes | None = None  # this process's copy of the entry, if it has one (checked by version)

    def probe(self, tenant_id: uuid.UUID) -> CacheProbe | None:
        """What the request gate should read for this plan in its round trip (None: nothing)."""
        if self.lookup:
            return CacheProbe(version_key(tenant_id), self.entry_key, self.local)
        return CacheProbe(version_key(tenant_id), None) if self.store else None


def cache_plan(scope: Scope, principal: Principal) -> CachePlan | None:
    """None unless this is a GET of a route marked ``opt={"cache": name}`` (worked out once per request)."""
    state = scope.setdefault("state", {})
    if _PLAN_STATE in state:
        cached: CachePlan | None = state[_PLAN_STATE]
        return cached
    plan = None
    name = scope["route_handler"].opt.get("cache") if scope.get("method") == "GET" else None
    if name:
        key = _request_entry_key(principal.tenant_id, name, scope["path"], scope.get("query_string", b""))
        directives = (_header(scope, b"cache-control") or b"").lower()
        no_store = b"no-store" in directives
        lookup = not (no_store or b"no-cache" in directives)
        plan = CachePlan(name, key, lookup=lookup, store=not no_store, local=LOCAL.get(key) if lookup else None)
    state[_PLAN_STATE] = plan
    return plan


def _count(name: str, outcome: str) -> None:
    instruments().cache_requests.add(1, {"cache": name, "outcome": outcome})


class ResponseCacheMiddleware(ASGIMiddleware):
    """Serves and fills the cache for routes marked ``opt={"cache": name}``; placed after rate limiting."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, ttl: int = CACHE_TTL_SECONDS) -> None:
        self.ttl = ttl

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        principal = scope.get("user")
        if not isinstance(principal, Principal):
            await next_app(scope, receive, send)
            return
        method = scope.get("method")
        if method not in _READ_METHODS:
            await next_app(scope, receive, self._bump_on_success(send, scope["app"].state.redis, principal.tenant_id))
            return
        plan = cache_plan(scope, principal)
        if plan is None:
            await next_app(scope, receive, send)
            return
        redis: Redis = scope["app"].state.redis
        tenant = principal.tenant_id
        name, key = plan.name, plan.entry_key
        # What the request gate (app/server/gate.py) already read in the rate limiter's round trip.
        prefetched: tuple[bytes, bytes | None] | None = scope.get("state", {}).pop(PREFETCH_STATE, None)
        if not plan.lookup:
            # The client asks for the origin (RFC 9111 §5.2.1): answer from the database; with no-store,
            # leave the cache as it is.
            _count(name, "bypass")
            version = b""
            if plan.store:
                try:
                    version = prefetched[0] if prefetched else await _current_version(redis, tenant)
                except _REDIS_DOWN:
                    version = b""
            await self._fill(scope, receive, send, next_app, redis, key, version, b"bypass")
            return
        try:
            if prefetched is not None:
                version, value = prefetched
            elif plan.local is not None:  # rate limiting is off, and this process has a copy: the version only
                version = await scope["app"].state.gate_redis.execute_command("GET", version_key(tenant))
                value = plan.local
                if version is None:
                    version = await _current_version(redis, tenant)
            else:  # rate limiting is off: one MGET on the same pipelined connection the gate uses
                version, value = await scope["app"].state.gate_redis.execute_command("MGET", version_key(tenant), key)
                if version is None:
                    version = await _current_version(redis, tenant)
        except _REDIS_DOWN as exc:
            _count(name, "error")
            log.warning("cache.unavailable", error=type(exc).__name__)
            await next_app(scope, receive, send)
            return
        if value is not None and value[:_VERSION_LEN] == version:
            _count(name, "hit")
            if plan.local is None:  # read from Redis: keep a copy, so the next hit needs no GET
                LOCAL.put(key, bytes(value))
            etag = bytes(value[_VERSION_LEN:_HEAD])
            await self._respond(scope, send, [(b"content-type", b"application/json")], etag, value[_HEAD:], b"hit")
            return
        _count(name, "miss")
        if plan.local is not None:
            LOCAL.drop(key)  # built under an older version
        await self._fill(scope, receive, send, next_app, redis, key, bytes(version))

    @staticmethod
    def _bump_on_success(send: Send, redis: Redis, tenant_id: uuid.UUID) -> Send:
        """A tenant's successful write through the API may change what its cached reads show: drop them
        before the client sees the answer (the request's transaction has committed by then)."""

        async def bumping(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                try:
                    await bump_tenant_cache_version(redis, tenant_id)
                except _REDIS_DOWN as exc:
                    log.warning("cache.bump_failed", error=type(exc).__name__)
            await send(message)

        return bumping

    async def _fill(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        next_app: ASGIApp,
        redis: Redis,
        key: str,
        version: bytes,
        outcome: bytes = b"miss",
    ) -> None:
        """Run the handler and store a 200 under ``version`` (read before the handler ran; ``b""``: don't)."""
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] != 200:  # errors and anything unusual pass through untouched
                    start = None
                    await send(message)
                    return
                start = dict(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            etag = etag_of(body)
            if version:
                value = version + etag + body
                try:
                    await redis.set(key, value, ex=self.ttl)
                except _REDIS_DOWN as exc:
                    log.warning("cache.store_failed", error=type(exc).__name__)
                LOCAL.put(key, value)
            headers = [(k, v) for k, v in start.get("headers", ()) if k.lower() != b"content-length"]
            await self._respond(scope, send, headers, etag, body, outcome, status=int(start["status"]))

        await next_app(scope, receive, capture)

    async def _respond(
        self,
        scope: Scope,
        send: Send,
        headers: list[Any],
        etag: bytes,
        body: bytes,
        outcome: bytes,
        status: int = 200,
    ) -> None:
        extra = [(b"etag", b'"' + etag + b'"'), _CACHE_CONTROL, _VARY, (b"x-cache", outcome)]
        if etag_matches(_header(scope, b"if-none-match"), etag):
            kept = [(k, v) for k, v in headers if k.lower() not in (b"content-type", b"content-length")]
            await send({"type": "http.response.start", "status": 304, "headers": [*kept, *extra]})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        length = (b"content-length", str(len(body)).encode())
        await send({"type": "http.response.start", "status": status, "headers": [*headers, length, *extra]})
        await send({"type": "http.response.body", "body": body, "more_body": False})
