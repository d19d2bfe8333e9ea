"""Inbound rate limiting: plan-aware limits per caller and per tenant, IETF headers, 429 problems, and the
login / registration throttles (per email and per client address).

Per request, after authentication:

* the caller (an API key, or a user within one tenant) is held to the plan's ``burst`` and ``minute``
  windows by the sliding-window limiter;
* API-key calls that pass are counted in the tenant's API-call usage for the calendar month (UTC) and
  refused once that count passes the plan's monthly quota (the ``month`` window). The usage counter *is*
  the quota counter, so the figure billing reports and the figure the limiter enforces are the same number;
  calls refused for speed are never counted;
* both, and the response cache's lookup for a cacheable GET, happen in one Lua call — one Redis round trip
  per request (``app/server/gate.py``).

Signed-in users (the dashboard) are not charged against the monthly API quota. What happens when Redis is
unreachable is ``Settings.rate_limit_fail_open`` (see ``app.lib.ratelimit`` and docs/api-platform.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.engine import set_tenant
from app.domain.accounts.services import TenantSelfRepository, session_is_current
from app.domain.apikeys import usage
from app.domain.billing.plans import Plan, effective_plan
from app.lib.clock import now_seconds
from app.lib.errors import AuthenticationError, RateLimitedError
from app.lib.ratelimit import Decision, Policy, RateLimiter, RateLimiterUnavailable, Window, WindowState
from app.lib.tokens import Principal, revocation_checks
from app.observability.metrics import instruments
from app.server.cache import PREFETCH_STATE, cache_plan
from app.server.gate import CacheProbe, GateResult, leased_entry, pass_gate
from app.server.lease import LeaseTable
from app.server.middleware import RESPONSE_HEADERS_STATE, STATUS_STATE
from app.server.throttle import THROTTLED_PATHS, AuthThrottle, AuthThrottleGate, Lockout, client_address

# Re-exported: tests and benchmarks build throttles from here.
__all__ = ["AuthThrottle", "Lockout", "RateLimitMiddleware", "TenantPlans", "client_address", "plan_limits"]

log = structlog.get_logger(__name__)
_REDIS_DOWN = (RedisError, OSError, asyncio.TimeoutError)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'}

PLAN_CACHE_SECONDS = 30.0


# ---- policies and headers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """What one plan means for the limiter, with the constant header text computed once."""

    caller: Policy  # burst + minute, per API key or per user-in-tenant
    monthly_quota: int  # API-key calls per calendar month, per tenant
    policy_header_user: bytes


def _policy_items(windows: tuple[Window, ...]) -> list[str]:
    return [f'"{w.name}";q={w.limit};w={math.ceil(w.seconds)}' for w in windows]


def plan_limits(plan: Plan) -> PlanLimits:
    caller = Policy(
        "api", tuple(Window(w.name, w.limit, float(w.seconds)) for w in plan.rate_limits if w.name != "month")
    )
    month = next((w.limit for w in plan.rate_limits if w.name == "month"), plan.api_calls_per_month)
    return PlanLimits(caller, month, ", ".join(_policy_items(caller.windows)).encode())


class Month:
    """The calendar month (UTC) in epoch seconds, its usage period and its tenants' usage-counter keys, worked
    out once a month per process: per request, ``datetime`` arithmetic, ``strftime``-like formatting and a
    UUID's ``str`` cost ~15 µs of an otherwise cached answer (``this_month``)."""

    __slots__ = ("_usage_keys", "end", "period", "seconds", "start")

    def __init__(self, at: float) -> None:
        now = datetime.fromtimestamp(at, UTC)
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        self.start, self.end = start.timestamp(), end.timestamp()
        self.seconds = (end - start).total_seconds()
        self.period = usage.period_of(start)
        self._usage_keys: dict[uuid.UUID, str] = {}

    def usage_key(self, tenant_id: uuid.UUID) -> str:
        """``usage.current_usage_key`` of the tenant for this month."""
        key = self._usage_keys.get(tenant_id)
        if key is None:
            if len(self._usage_keys) >= _USAGE_KEYS_MAX:
                self._usage_keys.clear()  # rare: this many tenants in one process this month; start over
            key = self._usage_keys[tenant_id] = usage.usage_key(tenant_id, self.period)
        return key

    def window(self, quota: int, used: int, at: float) -> WindowState:
        """The month as a window at ``at``: its length, what is left, and when it starts over."""
        return WindowState("month", quota, max(0, quota - used), self.end - at, self.seconds)


_USAGE_KEYS_MAX = 100_000
_month: Month | None = None


def this_month(at: float) -> Month:
    """The month ``at`` (epoch seconds) falls in; a new one from its first instant."""
    global _month
    month = _month
    if month is None or not month.start <= at < month.end:
        month = _month = Month(at)
    return month


def key_policy_header(limits: PlanLimits, month: WindowState) -> bytes:
    return limits.policy_header_user + f', "month";q={month.limit};w={math.ceil(month.seconds)}'.encode()


def _reset(state: WindowState) -> int:
    return math.ceil(state.reset_seconds - 1e-9)


def _values(states: list[WindowState]) -> tuple[str, int, int, int]:
    """The ``RateLimit`` field and the most constraining window (fewest left; the longer one on a tie), in one
    pass: it runs on every admitted request."""
    items: list[str] = []
    tightest = states[0]
    for s in states:
        items.append(f'"{s.name}";r={s.remaining};t={_reset(s)}')
        if s.remaining < tightest.remaining or (s.remaining == tightest.remaining and s.seconds > tightest.seconds):
            tightest = s
    return ", ".join(items), tightest.limit, tightest.remaining, _reset(tightest)


def rate_limit_headers(policy_header: bytes, states: list[WindowState]) -> list[tuple[bytes, bytes]]:
    """``RateLimit-Policy`` / ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers) and ``X-RateLimit-*``."""
    items, limit, remaining, reset = _values(states)
    return [
        (b"ratelimit-policy", policy_header),
        (b"ratelimit", items.encode()),
        (b"x-ratelimit-limit", b"%d" % limit),
        (b"x-ratelimit-remaining", b"%d" % remaining),
        (b"x-ratelimit-reset", b"%d" % reset),
    ]


def refusal(policy_header: bytes, decisions: list[Decision], detail: str) -> RateLimitedError:
    """The 429. ``Retry-After`` is when a retry can pass; refusing windows report that instant as their reset,
    so a client that waits for either ``Retry-After`` or the reset never retries too early."""
    retry = max(1, math.ceil(max(d.retry_after for d in decisions if not d.allowed) - 1e-9))
    refused = [
        WindowState(s.name, s.limit, 0, float(retry), s.seconds)
        for d in decisions
        if not d.allowed
        for s in d.windows
        if s.remaining == 0
    ]
    by_name = {s.name: s for s in refused}
    shown = [by_name.get(s.name, s) if not d.allowed else s for d in decisions for s in d.windows]
    items, _, _, _ = _values(shown)
    refusing = max(refused, key=lambda s: s.seconds, default=shown[0])
    return RateLimitedError(
        detail,
        headers={
            "Retry-After": str(retry),
            "RateLimit-Policy": policy_header.decode(),
            "RateLimit": items,
            "X-RateLimit-Limit": str(refusing.limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(retry),
        },
    )


# ---- the tenant's plan ---------------------------------------------------------------------------------


class TenantPlans:
    """Tenant → plan code, cached in-process (plan changes reach the limiter within PLAN_CACHE_SECONDS)."""

    def __init__(self, settings: Settings, ttl: float = PLAN_CACHE_SECONDS) -> None:
        self.settings = settings
        self.ttl = ttl
        self._codes: dict[uuid.UUID, tuple[str, float]] = {}
        self._inflight: dict[uuid.UUID, asyncio.Future[str]] = {}
        self._limits: dict[str, PlanLimits] = {}

    def limits(self, code: str) -> PlanLimits:
        found = self._limits.get(code)
        if found is None:
            plan = effective_plan(code, billing_enabled=self.settings.billing_enabled)
            found = self._limits[code] = plan_limits(plan)
        return found

    def remember(self, tenant_id: uuid.UUID, code: str) -> None:
        self._codes[tenant_id] = (code, time.monotonic() + self.ttl)

    async def code_for(self, tenant_id: uuid.UUID, sessionmaker: async_sessionmaker[AsyncSession]) -> str:
        cached = self._codes.get(tenant_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        pending = self._inflight.get(tenant_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._inflight[tenant_id] = future
        try:
            code = await self._load(tenant_id, sessionmaker)
            future.set_result(code)
            return code
        finally:
            del self._inflight[tenant_id]

    async def _load(self, tenant_id: uuid.UUID, sessionmaker: async_sessionmaker[AsyncSession]) -> str:
        try:
            async with sessionmaker() as session:
                await set_tenant(session, tenant_id)
                tenant = await TenantSelfRepository(session, tenant_id).get()
            code = tenant.plan if tenant is not None else self.settings.billing_default_plan
            self._codes[tenant_id] = (code, time.monotonic() + self.ttl)
        except Exception as exc:  # the database is down: limit by the default plan, look again soon
            log.warning("ratelimit.plan_unavailable", error=type(exc).__name__)
            code = self.settings.billing_default_plan
            self._codes[tenant_id] = (code, time.monotonic() + min(self.ttl, 5.0))
        return code


class TokenRevokedError(AuthenticationError):
    code = "token_revoked"


def _revoked(principal: Principal) -> TokenRevokedError:
    if principal.kind == "api_key":
        return TokenRevokedError("The API key has been revoked.", headers=_CHALLENGE)
    return TokenRevokedError(
        "This session has ended (logged out, role changed or removed from the organization); "
        "refresh the token or sign in again.",
        headers=_CHALLENGE,
    )


# ---- the middleware ------------------------------------------------------------------------------------


class RateLimitMiddleware(ASGIMiddleware):
    """Runs after authentication (``scope["user"]`` is the principal) on every routed HTTP request."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, settings: Settings, plans: TenantPlans, throttle: AuthThrottle) -> None:
        self.enabled = settings.rate_limit_enabled
        self.max_body = settings.request_max_body_bytes
        self.plans = plans
        self.throttle = throttle
        self.auth_gate = AuthThrottleGate(throttle, settings.request_max_body_bytes, refusal)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        principal = scope.get("user")
        if isinstance(principal, Principal):
            headers = await self._check_caller(scope, principal)
            if headers:
                # Added to whatever answers this request by the app's before-send hook (server/middleware.py).
                scope["state"][RESPONSE_HEADERS_STATE] = headers
        elif self.enabled and scope.get("method") == "POST" and scope["path"] in THROTTLED_PATHS:
            receive, after = await self.auth_gate.check(scope, receive)
            if after is not None:
                # The lockout learns how the attempt ended (a 401 is raised through here, a 200 is sent).
                try:
                    await next_app(scope, receive, send)
                except Exception as exc:
                    await after(int(getattr(exc, "status_code", 500)))
                    raise
                await after(int(scope.get("state", {}).get(STATUS_STATE, 500)))
                return
        await next_app(scope, receive, send)

    async def _check_caller(self, scope: Scope, principal: Principal) -> list[tuple[bytes, bytes]]:
        state: Any = scope["app"].state
        is_key = principal.kind == "api_key"
        hinted = scope.get("state", {}).get("plan") if is_key else None
        if hinted is not None:
            self.plans.remember(principal.tenant_id, hinted)
        if not self.enabled:
            await self._check_revocations(state, principal)
            if is_key:
                await self._count(state, principal.tenant_id)
            return []
        code = hinted or await self.plans.code_for(principal.tenant_id, state.sessionmaker)
        limits = self.plans.limits(code)
        caller_key = f"k:{principal.key_id}" if is_key else f"u:{principal.user_id}:{principal.tenant_id}"
        plan = cache_plan(scope, principal)
        at = now_seconds()  # one clock reading for the month's counter and the month window
        month = this_month(at)
        probe = plan.probe(principal.tenant_id) if plan is not None else None
        leases: LeaseTable = state.leases
        # Served from this process's token lease (counted at its grant; app/server/lease.py), or one round trip.
        revocations = revocation_checks(principal)
        leased = leases.take(caller_key, revocations) if leases.live else None
        if leased is not None:
            gate = leased
            if probe is not None and probe.entry_key is not None:
                with contextlib.suppress(*_REDIS_DOWN):  # no entry: the cache builds the page
                    gate.entry = await leased_entry(state.gate_redis, probe, gate.version)
        else:
            gate = await self._gate(state, principal, caller_key, limits, probe, month, leases, revocations)
        if gate.revoked:
            raise _revoked(principal)
        caller = gate.caller
        if gate.version is not None:
            scope.setdefault("state", {})[PREFETCH_STATE] = (gate.version, gate.entry)
        if not is_key:
            if not caller.allowed:
                raise refusal(limits.policy_header_user, [caller], "Too many requests; slow down.")
            return rate_limit_headers(limits.policy_header_user, caller.windows)
        window = month.window(limits.monthly_quota, max(gate.used, 0), at)
        if not caller.allowed:
            shown = Decision(allowed=True, retry_after=0.0, windows=[window])  # reported, not what refused
            raise refusal(key_policy_header(limits, window), [caller, shown], "Too many requests for this API key.")
        if gate.over_quota:
            window.remaining = 0
            quota = Decision(allowed=False, retry_after=window.reset_seconds, windows=[window])
            raise refusal(
                key_policy_header(limits, window),
                [caller, quota],
                "The organization's monthly API-call quota is used up.",
            )
        return rate_limit_headers(key_policy_header(limits, window), [*caller.windows, window])

    async def _gate(
        self,
        state: Any,
        principal: Principal,
        caller_key: str,
        limits: PlanLimits,
        probe: CacheProbe | None,
        month: Month,
        leases: LeaseTable,
        revocations: tuple[tuple[str, ...], tuple[int, ...]],
    ) -> GateResult:
        """Windows, monthly usage, revocations and the cache lookup: one round trip (app/server/gate.py),
        counting a token lease's worth of requests when this caller keeps coming (app/server/lease.py)."""
        limiter: RateLimiter = state.api_limiter
        is_key = principal.kind == "api_key"
        usage_key = month.usage_key(principal.tenant_id) if is_key else None
        size, streak = leases.size(caller_key, limits.caller, limits.monthly_quota)
        try:
            gate = await pass_gate(
                limiter,
                caller_key,
                limits.caller,
                usage_key=usage_key,
                monthly_quota=limits.monthly_quota,
                cache=probe,
                revocations=revocations,
                cost=size,
            )
            if size > 1 and not gate.revoked and (not gate.caller.allowed or gate.over_quota):
                size = 1  # a lease does not fit (another process took the room): this request alone
                gate = await pass_gate(
                    limiter,
                    caller_key,
                    limits.caller,
                    usage_key=usage_key,
                    monthly_quota=limits.monthly_quota,
                    cache=probe,
                    revocations=revocations,
                )
        except Exception as exc:
            leases.forget(caller_key)
            if not limiter.is_unavailable(exc):
                raise
            caller = limiter.unavailable(limits.caller, exc)  # fail closed raises here
            used = self._usage_unavailable(state, exc) if is_key else -1
            # Without Redis the revocation list is unknown: the database answers for user tokens (API keys
            # were just resolved from it, within the key cache's 5 s).
            revoked = not is_key and not await session_is_current(state.sessionmaker, principal)
            return GateResult(caller=caller, used=used, over_quota=False, version=None, entry=None, revoked=revoked)
        if gate.caller.allowed and not gate.over_quota and not gate.revoked:
            return leases.grant(caller_key, principal.tenant_id, size, streak, gate, usage_key, revocations)
        else:
            leases.forget(caller_key)
        return gate

    async def _check_revocations(self, state: Any, principal: Principal) -> None:
        """The revocation list on its own (rate limiting switched off): one MGET, or the database."""
        keys, floors = revocation_checks(principal)
        if not keys:
            return
        try:
            values = await state.gate_redis.execute_command("MGET", *keys)
            revoked = any(v is not None and int(v) > floor for v, floor in zip(values, floors, strict=True))
        except _REDIS_DOWN:
            revoked = principal.kind != "api_key" and not await session_is_current(state.sessionmaker, principal)
        if revoked:
            raise _revoked(principal)

    async def _count(self, state: Any, tenant_id: uuid.UUID) -> int:
        """Count one API-key call with limiting switched off; the month's count (0 when Redis is unreachable)."""
        try:
            key = this_month(now_seconds()).usage_key(tenant_id)
            count = int(await state.gate_redis.execute_command("INCR", key))
            if count == 1:
                await state.gate_redis.execute_command("EXPIRE", key, usage.RETENTION_SECONDS)
            return count
        except _REDIS_DOWN as exc:
            return self._usage_unavailable(state, exc)

    @staticmethod
    def _usage_unavailable(state: Any, exc: BaseException) -> int:
        # Same policy as the limiter: fail open (admit, count the miss, log) unless configured to refuse.
        instruments().limiter_unavailable.add(1, {"policy": "quota"})
        log.warning("usage.unavailable", error=type(exc).__name__)
        if not state.api_limiter.fail_open:
            raise RateLimiterUnavailable("The rate limiter cannot reach Redis") from exc
        return 0
