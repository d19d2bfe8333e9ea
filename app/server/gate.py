"""One Redis round trip per authenticated request.

What an authenticated request needs from Redis before its handler runs — the caller's rate-limit windows,
the tenant's monthly API-call count (API keys), and, for a cacheable GET, the tenant's cache version and the
cached entry — is one Lua script: the limiter's own fragment (``app.lib.ratelimit.LIMIT_LUA``, unchanged,
so every guarantee proved for it holds) followed by the quota and cache steps below. Separate calls cost a
round trip and ~50 µs of client-side Python each; on a cache hit this makes the whole request one.

Order inside the script (atomic, so no other request interleaves):

1. the caller's windows admit and count the request, or refuse it (nothing else is counted then);
2. an admitted API-key call is counted in the month's usage; past the plan's quota it is taken back and
   the request refused (the windows keep it, as a refused call still arrived);
3. only for an admitted request: the tenant's cache version (created if missing) and the entry under the
   route's key, returned only if it was built under that version.

Keys span several hash slots: single Redis (or a primary), not Redis Cluster — see docs/api-platform.md.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

from app.domain.apikeys.usage import RETENTION_SECONDS
from app.lib.cache_version import VERSION_LEN
from app.lib.ratelimit import HIT, LIMIT_LUA, Decision, Policy, RateLimiter, Script

# After LIMIT_LUA: ARGV[na..na+2] = count usage (0/1), monthly quota, usage TTL; KEYS[nk] = usage key (if
# counted). Then ARGV = cache mode (0 none, 1 version only, 2 version and entry), a fresh version;
# KEYS = version key, entry key (as the mode needs). Appends {used, over_quota, version, entry} to ``out``
# ('' for no version / no entry: a Lua array cannot hold nil).
_GATE: Final = Script(
    LIMIT_LUA
    + """
local allowed = out[1] == 1
local used, over = -1, 0
if ARGV[na] == '1' then
  if allowed then
    used = redis.call('INCR', KEYS[nk])
    if used == 1 then redis.call('EXPIRE', KEYS[nk], ARGV[na + 2]) end
    if used > tonumber(ARGV[na + 1]) then
      redis.call('DECR', KEYS[nk])
      over = 1
      allowed = false
    end
  else
    used = tonumber(redis.call('GET', KEYS[nk]) or 0)
  end
  nk = nk + 1
end
na = na + 3
local version, entry = '', ''
if ARGV[na] ~= '0' and allowed then
  redis.call('SET', KEYS[nk], ARGV[na + 1], 'NX')
  version = redis.call('GET', KEYS[nk])
  if ARGV[na] == '2' then
    local value = redis.call('GET', KEYS[nk + 1])
    if value and string.sub(value, 1, #version) == version then entry = value end
  end
end
out[#out + 1] = used
out[#out + 1] = over
out[#out + 1] = version
out[#out + 1] = entry
return out
"""
)
_USAGE_TTL: Final = str(RETENTION_SECONDS).encode()
_NO_USAGE: Final = (b"0", b"0", b"0")


@dataclass(slots=True)
class GateResult:
    caller: Decision  # the caller's windows (what step 1 decided)
    used: int  # the month's API-call count after this call (-1: not an API-key call)
    over_quota: bool  # admitted by the windows, refused by the monthly quota
    version: bytes | None  # the tenant's cache version (None: not asked, or the request was refused)
    entry: bytes | None  # the cached value (version + ETag + body) when current


@dataclass(frozen=True, slots=True)
class CacheProbe:
    version_key: str
    entry_key: str | None  # None: only the version (the client asked to revalidate)


async def pass_gate(
    limiter: RateLimiter,
    caller_key: str,
    policy: Policy,
    *,
    usage_key: str | None = None,
    monthly_quota: int = 0,
    cache: CacheProbe | None = None,
) -> GateResult:
    """Steps 1–3 in one round trip. Redis errors propagate (the caller applies the limiter's policy)."""
    keys: list[str] = []
    args: list[bytes | str] = []
    if usage_key is not None:
        keys.append(usage_key)
        args += [b"1", str(monthly_quota).encode(), _USAGE_TTL]
    else:
        args += _NO_USAGE
    if cache is None:
        args += [b"0", b""]
    else:
        keys.append(cache.version_key)
        if cache.entry_key is not None:
            keys.append(cache.entry_key)
        args += [b"2" if cache.entry_key is not None else b"1", secrets.token_hex(VERSION_LEN // 2)]
    reply, compiled = await limiter.run_script(_GATE, HIT, caller_key, policy, 1, tuple(keys), tuple(args))
    width = 2 + 2 * len(compiled.windows)
    used, over, version, entry = reply[width : width + 4]
    return GateResult(
        caller=limiter.decide(compiled, reply[:width], HIT, 1),
        used=int(used),
        over_quota=bool(int(over)),
        version=bytes(version) if version else None,
        entry=bytes(entry) if entry else None,
    )
