"""One Redis round trip per authenticated request.

What an authenticated request needs from Redis before its handler runs — the caller's rate-limit windows,
whether its token or key has been revoked, the tenant's monthly API-call count (API keys), and, for a
cacheable GET, the tenant's cache version — is one Lua script: the limiter's own fragment
(``app.lib.ratelimit.LIMIT_LUA``, unchanged, so every guarantee proved for it holds) followed by the
revocation, quota and cache steps below. The cached entry itself is a plain
``GET`` written to Redis in the same batch (one write, one round trip): a page of JSON returned through
Lua costs Redis several times what ``GET`` does. Separate round trips cost ~50 µs of client-side Python
each; on a cache hit the whole request is one.

Order inside the script (atomic, so no other request interleaves):

1. the caller's windows admit and count the request, or refuse it (nothing else is counted then);
1b. the revocation list (``app/lib/tokens.py``): one ``GET`` per key (the membership's version floor and the
   login session for a user token, the key itself for an API key); a revoked caller is refused like a
   refused one — no usage counted, no cache read — and answered 401;
2. an admitted API-key call is counted in the month's usage; past the plan's quota it is taken back and
   the request refused (the windows keep it, as a refused call still arrived);
3. only for an admitted request: the tenant's cache version (created if missing: seconds from Redis ``TIME``
   and a server-wide sequence, a token never handed out before); the entry (read by the batched ``GET``)
   is used only if it was built under that version.

When this process holds its own copy of the entry (``app/server/cache.py``, checked against the same
version), there is no ``GET`` at all: the script alone, whose arguments are the same on every request of a
caller (the encoded command is kept per caller), so a cached read costs one small command each way.

Keys span several hash slots: single Redis (or a primary), not Redis Cluster — see docs/api-platform.md.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Final

from redis.exceptions import NoScriptError

from app.domain.apikeys.usage import RETENTION_SECONDS
from app.lib.ratelimit import HIT, LIMIT_LUA, Decision, Policy, RateLimiter, Script
from app.lib.resp import PipelinedRedis, encode_command

# After LIMIT_LUA: ARGV[na] = m revocation keys, ARGV[na+1..na+m] the floor each must not exceed; KEYS[nk..]
# those keys. Then ARGV = count usage (0/1), monthly quota, usage TTL; KEYS = usage key (if counted). Then
# ARGV = cache (0 none, 1 the version); KEYS = the version key and the sequence a missing version is made
# from. Appends {used, over_quota, version, revoked} to ``out`` ('' for no version: a Lua array cannot
# hold nil).
_GATE: Final = Script(
    LIMIT_LUA
    + """
local allowed = out[1] == 1
local revoked = 0
local m = tonumber(ARGV[na])
if m > 0 then
  local values = call('MGET', unpack(KEYS, nk, nk + m - 1))
  for i = 1, m do
    local v = values[i]
    if v and tonumber(v) > tonumber(ARGV[na + i]) then revoked = 1 end
  end
end
nk = nk + m
na = na + 1 + m
if revoked == 1 then allowed = false end
local used, over = -1, 0
if ARGV[na] == '1' then
  if allowed then
    used = call('INCRBY', KEYS[nk], cost)
    if used == cost then call('EXPIRE', KEYS[nk], ARGV[na + 2]) end
    if used > tonumber(ARGV[na + 1]) then
      call('DECRBY', KEYS[nk], cost)
      over = 1
      allowed = false
    end
  else
    used = tonumber(call('GET', KEYS[nk]) or 0)
  end
  nk = nk + 1
end
na = na + 3
local version = ''
if ARGV[na] ~= '0' and allowed then
  version = call('GET', KEYS[nk])
  if not version then
    local t = call('TIME')
    local seq = call('INCR', KEYS[nk + 1])
    call('SET', KEYS[nk], string.format('%08x%08x', t[1] % 4294967296, seq % 4294967296), 'NX')
    version = call('GET', KEYS[nk])
  end
end
out[#out + 1] = used
out[#out + 1] = over
out[#out + 1] = version
out[#out + 1] = revoked
return out
"""
)
_USAGE_TTL: Final = str(RETENTION_SECONDS).encode()
_NO_USAGE: Final = (b"0", b"0", b"0")
_COUNTS: Final = [str(n).encode() for n in range(8)]
# Where a tenant's first version comes from (with Redis TIME): one counter for the whole server.
VERSION_SEQUENCE_KEY: Final = "cache:v1:version-seq"
# Encoded gate commands kept per caller (policy, usage month and cache key included): ~300 bytes each.
_ENCODED_MAX = 20_000


@dataclass(slots=True)
class GateResult:
    caller: Decision  # the caller's windows (what step 1 decided)
    used: int  # the month's API-call count after this call (-1: not an API-key call)
    over_quota: bool  # admitted by the windows, refused by the monthly quota
    version: bytes | None  # the tenant's cache version (None: not asked, or the request was refused)
    entry: bytes | None  # the cached value (version + ETag + body) when current
    revoked: bool = False  # the token's session, membership version or API key is on the revocation list
    # Where the call counted (for giving back a lease's unused tokens, app/server/lease.py): Redis's clock
    # (µs), the windows' counter keys (the bucket index is appended from the clock) and their widths (µs).
    stamp_us: int = 0
    window_keys: list[str] = field(default_factory=list)
    widths_us: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CacheProbe:
    version_key: str
    entry_key: str | None  # None: only the version (the client asked to revalidate)
    # This process's copy of the entry (version + ETag + body): served if its version is current, no GET.
    local: bytes | None = None


class _Encoded:
    """One caller's gate call, ready to write: the EVALSHA command's bytes, and what decoding its reply needs."""

    __slots__ = ("args", "compiled", "data", "keys", "window_keys")

    def __init__(self, compiled: Any, keys: list[str], args: list[bytes | str]) -> None:
        self.compiled = compiled
        self.keys = keys
        self.args = args
        self.window_keys = keys[: len(compiled.windows)]
        self.data = encode_command(("EVALSHA", _GATE.sha, len(keys), *keys, *args))


_encoded: OrderedDict[tuple[Any, ...], _Encoded] = OrderedDict()


def _command(
    limiter: RateLimiter,
    caller_key: str,
    policy: Policy,
    usage_key: str | None,
    monthly_quota: int,
    version_key: str | None,
    revocations: tuple[tuple[str, ...], tuple[int, ...]],
    cost: int = 1,
) -> _Encoded:
    """The gate's script call for this caller; its arguments never change between requests (but for the
    ``cost`` of a token lease, one of a few sizes), so it is built and encoded once and kept (bounded, least
    recently used out)."""
    cache_key = (id(limiter), caller_key, policy, usage_key, monthly_quota, version_key, revocations, cost)
    found = _encoded.get(cache_key)
    if found is not None:
        _encoded.move_to_end(cache_key)
        return found
    revocation_keys, floors = revocations
    keys: list[str] = list(revocation_keys)
    args: list[bytes | str] = [_COUNTS[len(revocation_keys)], *(str(f).encode() for f in floors)]
    if usage_key is not None:
        keys.append(usage_key)
        args += [b"1", str(monthly_quota).encode(), _USAGE_TTL]
    else:
        args += _NO_USAGE
    if version_key is None:
        args.append(b"0")
    else:
        keys += [version_key, VERSION_SEQUENCE_KEY]
        args.append(b"1")
    compiled, all_keys, all_args = limiter.script_call(HIT, caller_key, policy, cost, tuple(keys), tuple(args))
    found = _encoded[cache_key] = _Encoded(compiled, all_keys, all_args)
    if len(_encoded) > _ENCODED_MAX:
        _encoded.popitem(last=False)
    return found


async def pass_gate(
    limiter: RateLimiter,
    caller_key: str,
    policy: Policy,
    *,
    usage_key: str | None = None,
    monthly_quota: int = 0,
    cache: CacheProbe | None = None,
    revocations: tuple[tuple[str, ...], tuple[int, ...]] = ((), ()),
    cost: int = 1,
) -> GateResult:
    """Steps 1–3 in one round trip. Redis errors propagate (the caller applies the limiter's policy). ``cost``
    > 1 counts a token lease (app/server/lease.py): the windows and the month's usage take ``cost`` at once, or
    nothing; the reply's windows and ``used`` are as after counting all of them."""
    redis = limiter.redis
    if not isinstance(redis, PipelinedRedis):
        raise TypeError("the request gate's limiter runs on app.lib.resp.PipelinedRedis")
    version_key = cache.version_key if cache else None
    call = _command(limiter, caller_key, policy, usage_key, monthly_quota, version_key, revocations, cost)
    fetch = cache is not None and cache.entry_key is not None and cache.local is None
    if fetch:
        assert cache is not None and cache.entry_key is not None
        # The cached entry is a plain GET written in the same batch as the script (one round trip):
        # returning a page of JSON through Lua costs Redis several times what GET does.
        entry, reply = await redis.execute_raw(encode_command(("GET", cache.entry_key)) + call.data, 2)
    else:
        entry = None
        [reply] = await redis.execute_raw(call.data, 1)
    if isinstance(reply, NoScriptError):  # first use on this server, or after SCRIPT FLUSH / a restart
        reply = await redis.execute_command("EVAL", _GATE.source, len(call.keys), *call.keys, *call.args)
    for failed in (reply, entry):
        if isinstance(failed, Exception):
            raise failed
    width = 2 + 2 * len(call.compiled.windows)
    used, over, raw_version, revoked = reply[width : width + 4]
    version = bytes(raw_version) if raw_version else None
    # Served only if it was built under the version read just now (app/server/cache.py).
    value: bytes | None = cache.local if cache is not None and cache.local is not None else entry
    if value is not None and (version is None or value[: len(version)] != version):
        value = None
    return GateResult(
        caller=limiter.decide(call.compiled, reply[:width], HIT, cost),
        used=int(used),
        over_quota=bool(int(over)),
        version=version,
        entry=value,
        revoked=bool(int(revoked)),
        stamp_us=int(reply[1]),
        window_keys=call.window_keys,
        widths_us=call.compiled.widths_us,
    )


async def leased_entry(redis: PipelinedRedis, cache: CacheProbe | None, version: bytes | None) -> bytes | None:
    """For a request served from a token lease: the entry if it was built under the lease's ``version`` — this
    process's copy (nothing to ask), or Redis's (a plain ``GET``: one round trip, no script)."""
    if cache is None or version is None or cache.entry_key is None:
        return None
    value = cache.local
    if value is None:
        value = await redis.execute_command("GET", cache.entry_key)
    if value is not None and value[: len(version)] == version:
        return bytes(value)
    return None
