"""Throttles on the endpoints that take credentials instead of a bearer token: login, sign-up, refresh and
logout — counted on attempts (not only failures: a password spray cannot hide behind a few right guesses).

* **Login** is limited per client address, and per e-mail *and* client address together, with a lockout of
  growing delays after repeated failures of that pair (1 s after the 5th, doubling, at most 15 min). Keyed
  by the pair, so a stranger typing the owner's address locks out only themselves; the address limit bounds
  what one client tries across accounts. Unknown addresses are counted exactly like known ones (nothing here
  reveals whether an account exists).
* **Sign-up** per e-mail and per client address.
* **Refresh and logout** (``/auth/refresh``, ``/auth/logout``) per refresh token and per client address, as
  login: a stolen token id cannot be brute-forced for its secret, nor a client hammer the endpoint.

E-mails and tokens appear in Redis keys only as SHA-256 prefixes. Client addresses are what uvicorn resolved
(``X-Forwarded-For`` only from ``STOCK_TRACKER_FORWARDED_ALLOW_IPS``); IPv6 clients are grouped by /64.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import structlog
from litestar.types import Receive, Scope
from redis.exceptions import RedisError

from app.domain.accounts.services import normalize_or_none
from app.lib.errors import RateLimitedError
from app.lib.ratelimit import Decision, Policy, RateLimiter, Window
from app.observability.metrics import instruments
from app.server.bodies import buffer_body, replay

log = structlog.get_logger(__name__)
_REDIS_DOWN = (RedisError, OSError, asyncio.TimeoutError)

LOGIN_PATH = "/api/v1/auth/login"
REGISTER_PATH = "/api/v1/auth/register"
REFRESH_PATH = "/api/v1/auth/refresh"
LOGOUT_PATH = "/api/v1/auth/logout"
THROTTLED_PATHS: Final = frozenset({LOGIN_PATH, REGISTER_PATH, REFRESH_PATH, LOGOUT_PATH})


@dataclass(frozen=True, slots=True)
class Lockout:
    """Growing delays after repeated login failures of one e-mail from one client address."""

    after_failures: int = 5
    first_delay_seconds: float = 1.0
    max_delay_seconds: float = 900.0
    memory_seconds: int = 86400  # failures are forgotten this long after the last one (or at a success)

    def delay(self, failures: int) -> float:
        if failures < self.after_failures:
            return 0.0
        return min(self.first_delay_seconds * 2 ** (failures - self.after_failures), self.max_delay_seconds)


@dataclass(frozen=True, slots=True)
class AuthThrottle:
    """Limits on credential guessing and sign-up abuse; ``None`` switches one off."""

    login_per_email: Policy | None  # per e-mail and client address together
    login_per_address: Policy | None
    register_per_email: Policy | None
    register_per_address: Policy | None
    session_per_token: Policy | None = None  # refresh and logout, per refresh token
    session_per_address: Policy | None = None
    lockout: Lockout | None = None

    @classmethod
    def default(cls, *, per_address: bool = True) -> AuthThrottle:
        return cls(
            login_per_email=Policy("login-account", (Window("minute", 10, 60), Window("hour", 50, 3600))),
            login_per_address=(
                Policy("login-address", (Window("minute", 60, 60), Window("hour", 600, 3600))) if per_address else None
            ),
            register_per_email=Policy("register-email", (Window("hour", 5, 3600),)),
            register_per_address=(
                Policy("register-address", (Window("minute", 10, 60), Window("day", 100, 86400)))
                if per_address
                else None
            ),
            session_per_token=Policy("session-token", (Window("minute", 10, 60), Window("hour", 50, 3600))),
            session_per_address=(
                Policy("session-address", (Window("minute", 60, 60), Window("hour", 600, 3600)))
                if per_address
                else None
            ),
            lockout=Lockout(),
        )


class _Credentials(msgspec.Struct):
    email: str = ""
    refresh_token: str = ""


def client_address(scope: Scope) -> str:
    """The client's address (uvicorn resolves trusted proxies); IPv6 clients are grouped by their /64."""
    client = scope.get("client")
    host = str(client[0]) if client else "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address)
    return str(ip)


def _digest(value: str) -> str:
    # E-mails and tokens never appear in Redis keys in clear.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _token_id(refresh_token: str) -> str:
    """The refresh token's id part (``rt1.<tenant>.<id>.<secret>``); the whole string if it is not one."""
    parts = refresh_token.split(".")
    return parts[2] if len(parts) == 4 else refresh_token


def _policy_header(*policies: Policy | None) -> bytes:
    return ", ".join(
        f'"{w.name}";q={w.limit};w={math.ceil(w.seconds)}' for p in policies if p is not None for w in p.windows
    ).encode()


# The lockout's bookkeeping after a failed login: count it, and past the threshold lock the pair for the delay.
_FAILED_LUA: Final = """
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local after = tonumber(ARGV[2])
if n >= after then
  local ms = math.min(tonumber(ARGV[3]) * 2 ^ (n - after), tonumber(ARGV[4])) * 1000
  redis.call('SET', KEYS[2], n, 'PX', math.ceil(ms))
end
return n
"""

Refusal = Callable[[bytes, list[Decision], str], RateLimitedError]


class LoginLockedError(RateLimitedError):
    code = "login_locked"
    title = "Too many failed sign-ins"


class AuthThrottleGate:
    """Checks one credentials request before its handler; ``after(status)`` records the outcome (lockout)."""

    def __init__(self, throttle: AuthThrottle, max_body: int, refusal: Refusal) -> None:
        self.throttle = throttle
        self.max_body = max_body
        self.refusal = refusal

    async def check(self, scope: Scope, receive: Receive) -> tuple[Receive, Callable[[int], Awaitable[None]] | None]:
        path = scope["path"]
        t = self.throttle
        if path == LOGIN_PATH:
            by_address, by_subject = t.login_per_address, t.login_per_email
        elif path == REGISTER_PATH:
            by_address, by_subject = t.register_per_address, t.register_per_email
        else:
            by_address, by_subject = t.session_per_address, t.session_per_token
        state: Any = scope["app"].state
        limiter: RateLimiter = state.api_limiter
        address = client_address(scope)
        subject = ""
        if by_subject is not None or (path == LOGIN_PATH and t.lockout is not None):
            messages, body = await buffer_body(receive, self.max_body)
            receive = replay(messages, receive)
            subject = self._subject(path, body)
        if path == LOGIN_PATH and subject:
            subject = f"{subject}|{address}"  # the pair: nobody can lock another client out of an account
        checks = []
        if by_address is not None:
            checks.append(limiter.hit(f"a:{address}", by_address))
        if by_subject is not None and subject:
            checks.append(limiter.hit(f"e:{_digest(subject)}", by_subject))
        if checks:
            decisions = list(await asyncio.gather(*checks))
            if not all(d.allowed for d in decisions):
                what = {LOGIN_PATH: "sign-in attempts", REGISTER_PATH: "sign-ups"}.get(path, "token requests")
                raise self.refusal(
                    _policy_header(by_address, by_subject), decisions, f"Too many {what}; wait before trying again."
                )
        if path == LOGIN_PATH and t.lockout is not None and subject:
            return receive, await self._lockout(state.redis, t.lockout, _digest(subject))
        return receive, None

    @staticmethod
    def _subject(path: str, body: bytes | None) -> str:
        if not body:
            return ""
        try:
            sent = msgspec.json.decode(body, type=_Credentials)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return ""
        if path in (REFRESH_PATH, LOGOUT_PATH):
            return _token_id(sent.refresh_token) if sent.refresh_token else ""
        email = sent.email.strip()
        return (normalize_or_none(email) or email.lower()) if email else ""

    async def _lockout(self, redis: Any, lockout: Lockout, pair: str) -> Callable[[int], Awaitable[None]] | None:
        lock_key, fail_key = f"rl:auth:lock:{pair}", f"rl:auth:fail:{pair}"
        try:
            remaining_ms = int(await redis.pttl(lock_key))
        except _REDIS_DOWN as exc:  # fail open: the per-address and per-pair limits still count attempts
            log.warning("auth.lockout_unavailable", error=type(exc).__name__)
            return None
        if remaining_ms > 0:
            instruments().rate_limit_rejections.add(1, {"policy": "login-lockout"})
            seconds = max(1, math.ceil(remaining_ms / 1000))
            raise LoginLockedError(
                "Too many failed sign-ins from here; wait before trying again.", headers={"Retry-After": str(seconds)}
            )

        async def after(status: int) -> None:
            try:
                if status == 401:
                    await redis.eval(
                        _FAILED_LUA,
                        2,
                        fail_key,
                        lock_key,
                        lockout.memory_seconds,
                        lockout.after_failures,
                        lockout.first_delay_seconds,
                        lockout.max_delay_seconds,
                    )
                elif 200 <= status < 300:
                    await redis.delete(fail_key, lock_key)
            except _REDIS_DOWN as exc:
                log.warning("auth.lockout_unavailable", error=type(exc).__name__)

        return after
