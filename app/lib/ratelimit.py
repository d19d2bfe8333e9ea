"""Sliding-window counter rate limiter in Redis: every window of a policy checked in one atomic Lua call.

Each window of ``seconds`` keeps two small integer keys: the count of the current fixed window and of the
previous one. A request is estimated as ``previous × (1 − elapsed/seconds) + current``; it is admitted
only if ``estimate + cost ≤ limit`` in *every* window of the policy, and only then counted in all of them.
The clock is Redis ``TIME``, so every API replica and worker shares one notion of "now". Counter keys are
``<prefix>:<digest of key, policy, window>:<window index>`` and expire 2 windows after they are created.

Guarantee used by the outbound marketplace policies (see ``app/integrations/wildberries/limits.py``): in any
interval of length ``d`` a (limit L, window W) counter admits at most ``L + L·d/W`` requests. Proof sketch:
requests in one fixed window never exceed L; across a boundary at fraction ``f`` of window k, admission
needs ``c_k + p_{k−1}(1 − f) ≤ L``, so the part of window k−1 inside the interval plus ``c_k`` is at most
``p_{k−1}·f + L ≤ L + L·d/W``; every further whole window adds at most L while adding W to ``d``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import math
import time
from typing import Any, Final, Protocol

import msgspec
import structlog
from redis.exceptions import (
    BusyLoadingError,
    MasterDownError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.lib.errors import ServiceUnavailableError
from app.observability.metrics import instruments

log = structlog.get_logger(__name__)

_PEEK, _HIT, _CHARGE = b"0", b"1", b"2"
HIT: Final = _HIT  # the mode of a counting check, for scripts built on LIMIT_LUA

# The limiter proper, as a Lua fragment other scripts can extend (``RateLimiter.script``).
# KEYS[1..n]: the base key of each window (the fixed-window index is appended here, from Redis TIME).
# ARGV: mode (0 peek, 1 hit, 2 charge), cost, n, then per window: limit, width in microseconds; anything after
# that belongs to the extension. Leaves ``out`` = {allowed, now_us, prev_1, cur_1, prev_2, cur_2, ...} with the
# counts *before* this request, and ``nk``/``na``: the first KEYS / ARGV index left for an extension.
# Redis would truncate Lua floats, so the weighting is redone exactly in Python from these integers.
LIMIT_LUA: Final = """
local call = redis.call
local t = call('TIME')
local now = t[1] * 1000000 + t[2]
local cost = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local names, widths = {}, {}
for i = 1, n do
  local width = tonumber(ARGV[3 + 2 * i])
  local index = math.floor(now / width)
  widths[i] = width
  names[2 * i - 1] = KEYS[i] .. ':' .. string.format('%d', index - 1)
  names[2 * i] = KEYS[i] .. ':' .. string.format('%d', index)
end
local counts = call('MGET', unpack(names))
local out = {1, now}
for i = 1, n do
  local width = widths[i]
  local prev = tonumber(counts[2 * i - 1] or 0)
  local cur = tonumber(counts[2 * i] or 0)
  if prev * (1 - (now % width) / width) + cur + cost > tonumber(ARGV[2 + 2 * i]) then out[1] = 0 end
  out[2 * i + 1] = prev
  out[2 * i + 2] = cur
end
local mode = ARGV[1]
if mode == '2' or (mode == '1' and out[1] == 1) then
  for i = 1, n do
    if call('INCRBY', names[2 * i], cost) == cost then
      call('PEXPIRE', names[2 * i], math.ceil(widths[i] / 500))  -- 2 windows, in ms
    end
  end
end
local nk, na = n + 1, 4 + 2 * n
"""
_SCRIPT: Final = LIMIT_LUA + "return out\n"


class CommandClient(Protocol):
    """What the limiter needs of a Redis client: redis-py's ``Redis`` or ``app.lib.resp.PipelinedRedis``."""

    async def execute_command(self, *args: Any) -> Any: ...


class Script:
    """A Lua script and its SHA1, run with EVALSHA (falling back to EVAL when the server lacks it)."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    async def run(self, redis: CommandClient, keys: list[str], args: list[bytes | str]) -> list[Any]:
        try:
            reply = await redis.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:  # first use on this server, or after SCRIPT FLUSH / a restart
            reply = await redis.execute_command("EVAL", self.source, len(keys), *keys, *args)
        return list(reply)


_LIMIT: Final = Script(_SCRIPT)

# Errors that mean "Redis is not there" (as opposed to a bug in the script or the call).
# Redis that cannot serve the script (down, read-only replica, out of memory with noeviction, failing
# over) follows the configured fail-open/closed policy instead of turning every request into a 500.
_UNAVAILABLE = (
    RedisConnectionError,
    RedisTimeoutError,
    ReadOnlyError,
    OutOfMemoryError,
    MasterDownError,
    TryAgainError,
    BusyLoadingError,
    OSError,
    asyncio.TimeoutError,
)
_WARN_EVERY_S = 10.0


class Window(msgspec.Struct, frozen=True):
    """At most ``limit`` units per sliding ``seconds`` (fractional seconds allowed, e.g. 0.6)."""

    name: str
    limit: int
    seconds: float


class Policy(msgspec.Struct, frozen=True):
    """A named set of windows; a request must fit all of them."""

    name: str
    windows: tuple[Window, ...]


class WindowState(msgspec.Struct):
    """One window after the check: units that would still fit now, and when it is back to empty."""

    name: str
    limit: int
    remaining: int
    reset_seconds: float
    seconds: float


class Decision(msgspec.Struct):
    allowed: bool
    retry_after: float  # 0 when allowed; otherwise the earliest time a retry could pass
    windows: list[WindowState]


class RateLimiterUnavailable(ServiceUnavailableError):
    code = "rate_limiter_unavailable"
    title = "Rate limiter unavailable"


class _Compiled:
    """What a policy contributes to every call, built once per policy."""

    __slots__ = ("argv", "widths_us", "window_ids", "windows")

    def __init__(self, policy: Policy) -> None:
        if not policy.windows:
            raise ValueError(f"policy {policy.name!r} has no windows")
        self.windows = policy.windows
        self.widths_us: list[int] = []
        self.argv: list[bytes] = [str(len(policy.windows)).encode()]
        self.window_ids: list[str] = []
        for w in policy.windows:
            width = round(w.seconds * 1_000_000)
            if w.limit < 1 or width < 1000:
                raise ValueError(f"window {w.name!r}: limit must be ≥ 1 and seconds ≥ 0.001")
            self.widths_us.append(width)
            self.argv += [str(w.limit).encode(), str(width).encode()]
            self.window_ids.append(f"{policy.name}\x00{w.name}")


@functools.lru_cache(maxsize=65_536)
def _counter_name(prefix: str, key: str, window: str) -> str:
    # A short digest instead of the caller's key: with the window index appended the name stays within
    # 24 bytes, Redis's smallest allocation class for it (72 B per counter instead of 100+).
    digest = hashlib.blake2b(f"{key}\x00{window}".encode(), digest_size=7).digest()
    return f"{prefix}:{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def _retry_in(limit: int, width: float, prev: int, cur: int, f: float, cost: int) -> float:
    """Seconds until ``cost`` more units fit this window if nothing else is counted meanwhile."""
    if prev * (1 - f) + cur + cost <= limit:
        return 0.0
    if cur + cost <= limit:  # fits later in this window, once the previous window's weight has decayed
        return (1 - (limit - cur - cost) / prev - f) * width
    # this window is spent: wait for the next one, where the current count becomes the weighted one
    return (1 - f) * width + max(0.0, 1 - (limit - cost) / cur) * width


def _reset_in(width: float, prev: int, cur: int, f: float) -> float:
    """Seconds until the window's estimate is back to zero."""
    if cur:
        return (2 - f) * width
    return (1 - f) * width if prev else 0.0


def _decision(compiled: _Compiled, reply: list[int], cost: int, counted: bool) -> Decision:
    allowed = bool(reply[0])
    now_us = int(reply[1])
    states: list[WindowState] = []
    retry = 0.0
    for i, window in enumerate(compiled.windows):
        width_us = compiled.widths_us[i]
        prev, cur = int(reply[2 + 2 * i]), int(reply[3 + 2 * i])
        f = (now_us % width_us) / width_us
        width = width_us / 1_000_000
        if counted:
            cur += cost
        if not allowed:
            need = 1 if counted else cost  # after a forced charge: until one more unit fits
            retry = max(retry, _retry_in(window.limit, width, prev, cur, f, need))
        estimate = prev * (1 - f) + cur
        states.append(
            WindowState(
                name=window.name,
                limit=window.limit,
                remaining=max(0, math.floor(window.limit - estimate + 1e-9)),
                reset_seconds=round(_reset_in(width, prev, cur, f), 6),
                seconds=window.seconds,
            )
        )
    return Decision(allowed=allowed, retry_after=round(retry, 6) if not allowed else 0.0, windows=states)


class RateLimiter:
    """Checks and counts requests against a ``Policy`` for a key (an API key, a tenant, a connection)."""

    def __init__(self, redis: CommandClient, *, prefix: str = "rl", fail_open: bool = True) -> None:
        self.redis = redis
        self.prefix = prefix
        self.fail_open = fail_open
        self._compiled: dict[Policy, _Compiled] = {}
        self._last_warning = -math.inf

    async def hit(self, key: str, policy: Policy, cost: int = 1) -> Decision:
        """Count ``cost`` units if every window admits them; say when a retry could pass if not."""
        decision = await self._run(_HIT, key, policy, cost)
        if not decision.allowed:
            instruments().rate_limit_rejections.add(1, {"policy": policy.name})
        return decision

    async def peek(self, key: str, policy: Policy) -> Decision:
        """Whether one unit would be admitted now, without counting it."""
        return await self._run(_PEEK, key, policy, 1)

    async def charge(self, key: str, policy: Policy, cost: int) -> Decision:
        """Count ``cost`` units whether or not they fit (usage learned after the fact, e.g. a 4xx billed ×10)."""
        return await self._run(_CHARGE, key, policy, cost)

    async def acquire(self, key: str, policy: Policy, *, max_wait: float) -> Decision:
        """Hit, sleeping through refusals while the total wait stays ≤ ``max_wait``; else the refusing Decision."""
        deadline = time.monotonic() + max_wait
        while True:
            decision = await self._run(_HIT, key, policy, 1)
            if decision.allowed:
                return decision
            # a hair past the computed instant so the retry does not land on the boundary's wrong side
            wait = decision.retry_after + 0.002
            if time.monotonic() + wait > deadline:
                instruments().rate_limit_rejections.add(1, {"policy": policy.name})
                return decision
            await asyncio.sleep(wait)

    async def _run(self, mode: bytes, key: str, policy: Policy, cost: int) -> Decision:
        try:
            reply, compiled = await self.run_script(_LIMIT, mode, key, policy, cost)
        except _UNAVAILABLE as exc:
            return self._unavailable(policy, exc)
        return self.decide(compiled, reply, mode, cost)

    async def run_script(
        self,
        script: Script,
        mode: bytes,
        key: str,
        policy: Policy,
        cost: int = 1,
        extra_keys: tuple[str, ...] = (),
        extra_args: tuple[bytes | str, ...] = (),
    ) -> tuple[list[Any], _Compiled]:
        """Run ``script`` (``LIMIT_LUA`` plus an extension) for ``key`` under ``policy``; the raw reply.
        Redis errors propagate: the caller applies ``unavailable``."""
        compiled, keys, args = self.script_call(mode, key, policy, cost, extra_keys, extra_args)
        return await script.run(self.redis, keys, args), compiled

    def script_call(
        self,
        mode: bytes,
        key: str,
        policy: Policy,
        cost: int = 1,
        extra_keys: tuple[str, ...] = (),
        extra_args: tuple[bytes | str, ...] = (),
    ) -> tuple[_Compiled, list[str], list[bytes | str]]:
        """The KEYS and ARGV of a ``LIMIT_LUA`` script call, for a caller that sends it itself (in a pipeline)."""
        compiled = self._compiled.get(policy)
        if compiled is None:
            compiled = self._compiled[policy] = _Compiled(policy)
        if cost < 1 or (mode != _CHARGE and any(cost > w.limit for w in compiled.windows)):
            raise ValueError(f"cost {cost} can never fit policy {policy.name!r}")
        keys = [_counter_name(self.prefix, key, window_id) for window_id in compiled.window_ids]
        return compiled, [*keys, *extra_keys], [mode, str(cost).encode(), *compiled.argv, *extra_args]

    @staticmethod
    def decide(compiled: _Compiled, reply: list[Any], mode: bytes, cost: int) -> Decision:
        """The limiter's part of a reply (its first 2 + 2n items)."""
        return _decision(compiled, reply, cost, counted=mode == _CHARGE or (mode == _HIT and bool(reply[0])))

    def unavailable(self, policy: Policy, exc: BaseException) -> Decision:
        return self._unavailable(policy, exc)

    def is_unavailable(self, exc: BaseException) -> bool:
        return isinstance(exc, _UNAVAILABLE)

    def _unavailable(self, policy: Policy, exc: BaseException) -> Decision:
        instruments().limiter_unavailable.add(1, {"policy": policy.name})
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:  # one line per burst of failures, not one per request
            self._last_warning = now
            log.warning("ratelimit.unavailable", policy=policy.name, fail_open=self.fail_open, error=type(exc).__name__)
        if not self.fail_open:
            raise RateLimiterUnavailable("The rate limiter cannot reach Redis") from exc
        states = [WindowState(w.name, w.limit, w.limit, 0.0, w.seconds) for w in policy.windows]
        return Decision(allowed=True, retry_after=0.0, windows=states)


def token_bucket_policy(name: str, *, requests: int, per: float, burst: int, jitter: float = 0.5) -> Policy:
    """One window that never overdraws a server's token bucket (``requests`` per ``per`` s, ``burst``).

    The bucket starts full and refills at ``r = requests/per``; it admits a stream iff every interval of
    length ``d`` holds at most ``burst + r·d`` requests. Our window admits at most ``L + (L/W)·d`` (module
    docstring), and requests may reach the server up to ``jitter`` seconds closer together than we admitted
    them. With ``ρ = L/W`` no interval can exceed the bucket if ``L ≤ burst``, ``ρ ≤ r`` and
    ``(burst − L + 1)/ρ ≥ 1/r + jitter``: the head-room ``burst − L`` absorbs the jitter. Of the safe
    (L, W) pairs this takes the best sustained rate for a greedy client (about ``(L − 1)/W``), preferring
    more head-room among pairs within 1 % of it.
    """
    interval = per / requests
    candidates = []
    for limit in range(1, burst + 1):
        rate = min(1 / interval, (burst - limit + 1) / (interval + jitter))
        headroom = (burst - limit + 1) / rate - interval  # the jitter this pair tolerates
        candidates.append((rate * (limit - 1) / limit, headroom, limit, limit / rate))
    best = max(c[0] for c in candidates)
    _, _, limit, seconds = max((c for c in candidates if c[0] >= 0.99 * best), key=lambda c: (c[1], c[2]))
    # rounded up to the microsecond the script works in: never a hair faster than derived
    return Policy(name, (Window("bucket", limit, math.ceil(seconds * 1_000_000 - 1e-6) / 1_000_000),))
