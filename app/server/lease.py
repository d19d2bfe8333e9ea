"""Token leases: a caller that keeps coming is counted a few requests at a time, and served from memory between.

Every authenticated request passes the gate (``app/server/gate.py``): one Redis script that checks and counts
the caller's windows and the month's usage, reads the revocation list and the tenant's cache version. On a
2-core host that script is ~15 µs of Redis CPU and a round trip per request (docs/scaling.md, "Token
leases"). When one API process sees the same caller come again and again, it counts ``size`` requests in one
gate call (the windows and the usage take them all, or none) and serves the next ``size − 1`` requests of that
caller from that grant for at most ``seconds`` — the lease. Unused tokens are given back to the windows and to
the usage count when the lease ends (``GIVE_BACK``).

What it trades, and the bounds (tested in tests/integration/server/test_token_leases.py):

* **Counted before served, still.** A leased request was counted in Redis before it was served (at its grant).
  The usage count (and a fixed window's counter) can read *ahead* by the tokens leases hold: at most
  ``size − 1`` per active caller per API process, for at most ``seconds`` + one sweep (``seconds / 2``) —
  then the unused ones are given back. A process killed with leases outstanding leaves them counted: at
  most ``size − 1`` calls per caller it was serving (never fewer counted than served).
* **Over-admission.** One process never serves more than it counted. Across ``P`` processes a token counted
  in one instant may be served up to ``seconds`` later, so in any interval of a window's length a caller is
  admitted at most the limiter's own bound (``app/lib/ratelimit.py``) plus ``P × (size − 1)``. Sizes stay
  small against the plan: ``size ≤ min(max_tokens, smallest window limit ÷ 8, what is left in any window ÷
  4, what is left of the month's quota ÷ 4)``, so a plan whose burst window is under 16 requests is never
  leased (every call exact), and a caller near any limit goes back to one request per call.
* **Revocations and cache versions** still reach a lease at once: whoever revokes or bumps a version drops
  this process's leases synchronously and publishes the event (``app/lib/gate_events.py``); every process
  drops the matching leases in its subscription's read callback, before a request read in the same turn of
  its event loop — in another process, as soon as Redis delivers the event (written to subscribers in the
  same pass as the publishing call's answer: normally before the client's next request; on a loaded host a
  moment after a request already read). A process whose subscription is down grants no leases. If a message
  is late or lost (Redis restarted between the change and its delivery), a lease outlives it by at most
  ``seconds``.
* **Headers** of a leased request are what one exact call would have said for it: each window's remaining
  is the grant's plus the tokens still held after this one, the month's count the grant's minus them.

A lease grows only with demand: a caller's first ``WARM`` grants are one request each; each grant used up
within ``seconds`` doubles the next (up to the caps); one that ends with tokens unused halves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Final

import structlog
from redis.exceptions import NoScriptError, RedisError

from app.lib import gate_events
from app.lib.ratelimit import Decision, Policy, Script, Window, WindowState
from app.lib.resp import PipelinedRedis
from app.server.gate import GateResult

log = structlog.get_logger(__name__)

WARM: Final = 4  # grants of one request before a caller's first lease
_LIMIT_SHARE: Final = 8  # size ≤ the smallest window's limit ÷ this
_HEADROOM_SHARE: Final = 4  # size ≤ what is left (in a window, of the month) ÷ this
_MAX_RETURNS: Final = 100_000  # give-backs waiting for Redis (it was unreachable): beyond, dropped (counted)

# Give back ``n`` unused tokens of a grant: to each window's counter of the grant's instant (the bucket is
# worked out from that instant as LIMIT_LUA does), and to the month's usage count; never below zero, never
# creating a key (a counter that already expired stays gone).
# KEYS: the window counter keys (without bucket), then the usage key (if any).
# ARGV: n, the grant's Redis time (µs), the number of windows, each window's width (µs), 1 if a usage key.
GIVE_BACK: Final = Script(
    """
local call = redis.call
local n = tonumber(ARGV[1])
local stamp = tonumber(ARGV[2])
local windows = tonumber(ARGV[3])
local function take(key)
  local v = tonumber(call('GET', key) or 0)
  if v > 0 then call('DECRBY', key, math.min(n, v)) end
end
for i = 1, windows do
  local width = tonumber(ARGV[3 + i])
  take(KEYS[i] .. ':' .. string.format('%d', math.floor(stamp / width)))
end
if ARGV[4 + windows] == '1' then take(KEYS[windows + 1]) end
return 1
"""
)


class Lease:
    """One caller's last grant in this process (kept after it is used up: its timing sizes the next one), updated
    in place by the next grant: the per-request path allocates nothing for it."""

    __slots__ = (
        "expires",
        "granted",
        "identity",
        "remaining",
        "resets",
        "size",
        "spec",
        "stamp_us",
        "streak",
        "tenant_id",
        "tokens",
        "unused",
        "usage_key",
        "used",
        "version",
        "widths_us",
        "window_keys",
    )

    def __init__(self) -> None:
        self.tokens = 0  # counted and not yet served
        self.unused = False  # ended with tokens unserved (expired, or dropped by an event)

    def set(
        self,
        tenant_id: uuid.UUID,
        size: int,
        granted: float,
        expires: float,
        streak: int,
        spec: tuple[Window, ...],
        result: GateResult,
        usage_key: str | None,
        identity: object,
    ) -> None:
        self.tenant_id = tenant_id
        self.size = size  # requests the grant counted
        self.granted = granted  # monotonic
        self.expires = expires
        self.streak = streak  # grants in a row used up within the lease time
        # The grant's reply: the windows and the month's count as after counting ``size``, the cache version,
        # and where it counted (for giving back). Only numbers and long-lived objects are kept: a lease outlives
        # its request, and references to that request's objects would make the collector promote them (full
        # collections that cost every request several µs).
        self.spec = spec  # the policy's windows (name, limit, width)
        self.remaining = tuple([w.remaining for w in result.caller.windows])
        self.resets = tuple([w.reset_seconds for w in result.caller.windows])
        self.used = result.used
        self.version = result.version
        self.stamp_us = result.stamp_us
        self.window_keys = result.window_keys
        self.widths_us = result.widths_us
        self.usage_key = usage_key
        # What the grant's revocation check covered (``revocation_checks``: for a user, the membership's
        # version and the login session): a request of the same caller with another token is not served here.
        self.identity = identity
        self.unused = False


# A give-back: unused tokens, the grant's Redis time, its window counter keys and widths, the usage key.
_Return = tuple[int, int, Sequence[str], Sequence[int], str | None]


class LeaseCounts:
    """A table's counters (plain integers: one of them moves on every leased request)."""

    __slots__ = ("dropped", "given_back", "grants", "lost", "served")

    def __init__(self) -> None:
        self.served = self.grants = self.given_back = self.dropped = self.lost = 0


class LeaseTable:
    """This process's leases, by caller (``k:<key>`` / ``u:<user>:<tenant>``, as the limiter keys them)."""

    def __init__(self, max_tokens: int, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_tokens = max_tokens
        self.seconds = seconds
        self.clock = clock
        self.live = False  # the event subscription is up (set by it); no leases while it is not
        self._leases: dict[str, Lease] = {}
        self._returns: list[_Return] = []
        # Counters (the metrics, tests and docs/scaling.md read them): requests served from leases, grants of
        # more than one, tokens given back, leases dropped by an event, tokens never given back. Kept apart from
        # the table so the process's totals outlive it (the metrics are counters: they never go down).
        self.counts = LeaseCounts()
        _COUNTS.append(self.counts)
        _TABLES.add(self)

    served = property(lambda self: self.counts.served)
    grants = property(lambda self: self.counts.grants)
    given_back = property(lambda self: self.counts.given_back)
    dropped = property(lambda self: self.counts.dropped)
    lost = property(lambda self: self.counts.lost)

    @property
    def enabled(self) -> bool:
        return self.max_tokens > 1 and self.live

    # ---- per request -----------------------------------------------------------------------------------

    def take(self, caller: str, identity: object = None) -> GateResult | None:
        """One request of ``caller`` served from its lease (the gate's answer for it), or None: ask Redis.
        ``identity``: what this request's revocation check covers; another token's lease is not used."""
        lease = self._leases.get(caller)
        if lease is None or lease.tokens <= 0:
            return None
        if lease.identity is not identity and lease.identity != identity:
            return None
        now = self.clock()
        if now >= lease.expires or not self.live:
            self._retire(lease)
            return None
        lease.tokens -= 1
        self.counts.served += 1
        return _view(
            lease.spec, lease.remaining, lease.resets, now - lease.granted, lease.used, lease.version, lease.tokens
        )

    def size(self, caller: str, policy: Policy, monthly_quota: int) -> tuple[int, int]:
        """How many requests the next gate call of ``caller`` should count, and the streak it continues."""
        lease = self._leases.get(caller)
        if lease is None or not self.enabled:
            return 1, 0
        now = self.clock()
        if lease.tokens <= 0 and not lease.unused and now - lease.granted <= self.seconds:
            streak = lease.streak + 1  # used up within the lease time: demand ≥ one grant per lease
            want = 1 if streak < WARM else max(2, 2 * lease.size)
        else:  # ended with tokens unused, or the caller slowed down: half as many
            want = lease.size // 2
            streak = lease.streak if want > 1 else max(0, min(lease.streak, WARM) - 1)
        if want <= 1:
            return 1, streak
        size = min(self.max_tokens, want, min(w.limit for w in policy.windows) // _LIMIT_SHARE)
        if lease.remaining:
            size = min(size, min(lease.remaining) // _HEADROOM_SHARE)
        if lease.used >= 0:
            size = min(size, (monthly_quota - lease.used) // _HEADROOM_SHARE)
        return max(1, size), streak

    def grant(
        self,
        caller: str,
        tenant_id: uuid.UUID,
        size: int,
        streak: int,
        policy: Policy,
        result: GateResult,
        usage_key: str | None,
        identity: object = None,
    ) -> GateResult:
        """Record the gate's admitted answer for ``caller`` (``size`` requests counted; this one is served now);
        the answer for this request (as if it alone had been counted)."""
        if not self.enabled:  # no leases: nothing to remember (and nothing to give back unless counted ahead)
            if size > 1:  # the subscription went down while the call was out
                self._returns.append((size - 1, result.stamp_us, result.window_keys, result.widths_us, usage_key))
                return _held(result, size - 1)
            return result
        lease = self._leases.get(caller)
        if lease is None:
            lease = self._leases[caller] = Lease()
        elif lease.tokens > 0:  # concurrent grants: the older one's tokens go back
            self._retire(lease)
        now = self.clock()
        lease.set(tenant_id, size, now, now + self.seconds, streak, policy.windows, result, usage_key, identity)
        if size <= 1:
            return result
        lease.tokens = size - 1
        self.counts.grants += 1
        return _held(result, size - 1)

    def forget(self, caller: str) -> None:
        """A refused, revoked or failed call: the caller's lease (if any) ends."""
        lease = self._leases.pop(caller, None)
        if lease is not None:
            self._retire(lease)

    # ---- events ----------------------------------------------------------------------------------------

    def on_event(self, event: bytes) -> None:
        """A revocation (every lease) or a tenant's new cache version (that tenant's): ended now."""
        tenant: uuid.UUID | None = None
        if event.startswith(b"t:"):
            try:
                tenant = uuid.UUID(event[2:].decode())
            except ValueError:
                tenant = None  # not one of ours: end them all, to be safe
        for lease in self._leases.values():
            if lease.tokens > 0 and (tenant is None or lease.tenant_id == tenant):
                self._retire(lease)
                self.counts.dropped += 1

    def set_live(self, live: bool) -> None:
        self.live = live
        if not live:
            for lease in self._leases.values():
                if lease.tokens > 0:
                    self._retire(lease)

    def held(self) -> int:
        """Tokens counted in Redis and not served: in live leases and in give-backs not yet sent."""
        return sum(lease.tokens for lease in list(self._leases.values())) + sum(item[0] for item in self._returns)

    # ---- giving back -----------------------------------------------------------------------------------

    def _retire(self, lease: Lease) -> None:
        if lease.tokens > 0:
            if len(self._returns) < _MAX_RETURNS:
                self._returns.append(
                    (lease.tokens, lease.stamp_us, lease.window_keys, lease.widths_us, lease.usage_key)
                )
            else:
                self.counts.lost += lease.tokens
                log.warning("lease.give_back_dropped", tokens=lease.tokens)
            lease.tokens = 0
            lease.unused = True
        lease.expires = 0.0

    def sweep(self) -> None:
        """End expired leases (their unused tokens queued to go back); forget callers idle for a while."""
        now = self.clock()
        idle = now - 4 * self.seconds
        for caller, lease in list(self._leases.items()):
            if lease.tokens > 0 and now >= lease.expires:
                self._retire(lease)
            elif lease.tokens <= 0 and lease.granted < idle:
                del self._leases[caller]

    async def give_back(self, redis: PipelinedRedis) -> int:
        """Send the queued give-backs (one pipelined write); how many tokens went back. Redis unreachable: kept
        for the next try."""
        returns, self._returns = self._returns, []
        if not returns:
            return 0
        commands = [_give_back_command(*item) for item in returns]
        tokens = done = 0  # give-backs settled, in order: a failure re-queues only the rest (none goes twice)
        try:
            replies = await redis.execute_many(*(("EVALSHA", GIVE_BACK.sha, *c) for c in commands))
            for i, reply in enumerate(replies):
                n = returns[i][0]
                if isinstance(reply, NoScriptError):
                    await redis.execute_command("EVAL", GIVE_BACK.source, *commands[i])
                    tokens += n
                elif isinstance(reply, Exception):  # refused by the server: retrying would not help
                    log.warning("lease.give_back_refused", error=type(reply).__name__, tokens=n)
                    self.counts.lost += n
                else:
                    tokens += n
                done = i + 1
        except (TimeoutError, RedisError, OSError) as exc:
            # Unreachable (nothing of this write applied, unless the connection broke after sending it).
            log.warning("lease.give_back_failed", error=type(exc).__name__, grants=len(returns) - done)
            rest = returns[done:]
            keep = max(0, _MAX_RETURNS - len(self._returns))
            self.counts.lost += sum(item[0] for item in rest[keep:])
            self._returns = rest[:keep] + self._returns
        self.counts.given_back += tokens
        return tokens

    async def run(self, redis: PipelinedRedis) -> None:
        """The sweeper: every half lease time, end expired leases and give their unused tokens back."""
        while True:
            await asyncio.sleep(self.seconds / 2)
            self.sweep()
            await self.give_back(redis)


def _give_back_command(
    n: int, stamp_us: int, window_keys: Sequence[str], widths_us: Sequence[int], usage_key: str | None
) -> list[Any]:
    keys: list[str] = list(window_keys)
    if usage_key is not None:
        keys.append(usage_key)
    return [len(keys), *keys, n, stamp_us, len(widths_us), *widths_us, 1 if usage_key is not None else 0]


def _view(
    spec: tuple[Window, ...],
    remaining: tuple[int, ...],
    resets: tuple[float, ...],
    elapsed: float,
    used: int,
    version: bytes | None,
    held: int,
) -> GateResult:
    """The gate's answer for one request of a grant while ``held`` of its tokens are still unserved: as if only
    the requests served so far had been counted; each window's reset counted down by the ``elapsed`` seconds
    since the grant."""
    return GateResult(
        caller=Decision(
            allowed=True,
            retry_after=0.0,
            windows=[
                WindowState(w.name, w.limit, left + held, reset - elapsed if reset > elapsed else 0.0, w.seconds)
                for w, left, reset in zip(spec, remaining, resets, strict=True)
            ],
        ),
        used=used - held if used >= 0 else -1,
        over_quota=False,
        version=version,
        entry=None,
    )


def _held(result: GateResult, held: int) -> GateResult:
    """The grant's own request: its answer with ``held`` tokens still unserved."""
    windows = result.caller.windows
    for w in windows:
        w.remaining += held
    result.used = result.used - held if result.used >= 0 else -1
    return result


_TABLES: weakref.WeakSet[LeaseTable] = weakref.WeakSet()  # live tables (the gauge of tokens held)
_COUNTS: list[LeaseCounts] = []  # every table's counters, for the process's totals (one table per API process)
_exported = False


def export_metrics() -> None:
    """The leases' counters as Prometheus series (read at scrape time; once per process, over every table).

    ``stock_tracker_rate_limit_lease_served_total`` requests served from a lease (no Redis call),
    ``…_lease_grants_total`` gate calls that counted more than one request, ``…_lease_tokens_returned_total``
    unused tokens given back, ``…_lease_dropped_total`` leases ended early by a revocation or cache event,
    ``…_lease_tokens_lost_total`` tokens that could not be given back (usage stays ahead by them), and the
    gauge ``stock_tracker_rate_limit_lease_tokens_held``: counted and not yet served or given back."""
    global _exported
    if _exported:
        return
    from app.observability.metrics import observe_state, observe_totals

    def total(attr: str) -> Callable[[], list[tuple[float, dict[str, str]]]]:
        return lambda: [(float(sum(getattr(c, attr) for c in list(_COUNTS))), {})]

    for attr, name, description in (
        ("served", "served", "Requests served from a token lease, without a call to Redis."),
        ("grants", "grants", "Limiter calls that counted more than one request (a lease granted)."),
        ("given_back", "tokens_returned", "Unused leased tokens given back to the limiter and the usage count."),
        ("dropped", "dropped", "Leases ended early by a revocation or a cache-version event."),
        ("lost", "tokens_lost", "Leased tokens that could not be given back (usage stays ahead by them)."),
    ):
        observe_totals(f"stock_tracker.rate_limit_lease_{name}", description, total(attr))
    observe_state(
        "stock_tracker.rate_limit_lease_tokens_held",
        "Leased tokens counted in Redis and not yet served or given back.",
        lambda: [(float(sum(t.held() for t in list(_TABLES))), {})],
    )
    _exported = True


class GateLeases:
    """The table, its sweeper and its event subscription, for one API process (started in the lifespan)."""

    def __init__(self, table: LeaseTable, redis: PipelinedRedis, redis_url: str) -> None:
        from app.lib.resp import Subscription

        self.table = table
        self.redis = redis
        export_metrics()
        self.subscription = Subscription(redis_url, gate_events.CHANNEL, table.on_event, table.set_live)
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        gate_events.listen(self.table.on_event)
        if self.table.max_tokens > 1:
            self.subscription.start()
            self._sweeper = asyncio.get_running_loop().create_task(self.table.run(self.redis))

    async def stop(self) -> None:
        gate_events.unlisten(self.table.on_event)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.subscription.aclose()
        self.table.set_live(False)  # every lease still holding tokens ends: they go back just below
        await self.table.give_back(self.redis)
