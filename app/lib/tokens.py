"""Access tokens (JWT, HS256), the principal a request acts as, and the revocation list that makes removal,
role changes, logout and API-key revocation take effect on the very next request.

An access token carries ``ver`` (the membership's token version when it was issued) and ``sid`` (its login
session: the refresh-token family). Revocations are Redis keys, read by the per-request gate in the same
Lua call as the rate limiter (no extra round trip, ``app/server/gate.py``):

* ``auth:v:<user>:<tenant>`` — tokens of this membership with ``ver`` below this value are refused. A role
  change sets it to the membership's new version; a removal to a fresh value above every version issued
  so far (versions come from one PostgreSQL sequence, so a later re-invitation starts above it);
* ``auth:s:<session>`` — the session was logged out (or its refresh token replayed);
* ``auth:k:<api key>`` — the key was revoked (every process's 5 s key cache is bypassed).

Each key lives as long as a token issued before it could (the access-token lifetime plus leeway); the
database stays the truth (memberships, refresh-token families, api_keys.revoked_at), and is what the gate
asks when Redis cannot be reached. Revocations are published only after the transaction that made them has
committed (``queue_revocation`` → the request's session publishes them after its commit).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

import jwt

from app.lib.clock import utcnow
from app.lib.errors import AuthenticationError
from app.lib.gate_events import CHANNEL, REVOCATION, notify_local
from app.lib.ids import uuid7

ALGORITHM = "HS256"
WRITE_ROLES = frozenset({"owner", "admin", "member_write"})
LEEWAY_SECONDS = 5
# API-key revocations outlive every process's key cache (5 s) by far: after that the database says so.
KEY_REVOCATION_SECONDS = 3600
_PENDING = "pending_revocations"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user in one tenant (role) or an API key (scopes)."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    role: str
    kind: str = "user"  # "user" | "api_key"
    scopes: frozenset[str] = field(default_factory=lambda: frozenset({"read", "write"}))
    key_id: uuid.UUID | None = None
    token_version: int = 0  # the membership's version when the token was issued (users)
    session_id: uuid.UUID | None = None  # the login session (refresh-token family) of a user token

    @property
    def can_write(self) -> bool:
        if self.kind == "api_key":
            return "write" in self.scopes
        return self.role in ("owner", "admin")

    @property
    def is_admin(self) -> bool:
        return self.kind == "user" and self.role in ("owner", "admin")


class AccessTokenCodec:
    """Signs with ``secret``; verifies with it and then with each of ``previous_secrets`` (rotation: tokens
    signed before the change keep working until they expire)."""

    def __init__(
        self, secret: str, issuer: str, audience: str, ttl_seconds: int, previous_secrets: Sequence[str] = ()
    ) -> None:
        self._secret = secret
        self._verify_with = [secret, *(s for s in previous_secrets if s and s != secret)]
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds

    def encode(
        self,
        user_id: uuid.UUID,
        tenant_id: uuid.UUID,
        role: str,
        *,
        version: int = 0,
        session_id: uuid.UUID | None = None,
    ) -> str:
        now = utcnow()
        payload: dict[str, Any] = {
            "sub": str(user_id),
            "tid": str(tenant_id),
            "role": role,
            "ver": version,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=self.ttl_seconds),
            "jti": str(uuid7()),
        }
        if session_id is not None:
            payload["sid"] = session_id.hex
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def _verify(self, token: str, secret: str) -> dict[str, Any]:
        return jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=self.audience,
            issuer=self.issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
            leeway=LEEWAY_SECONDS,
        )

    def _claims(self, token: str) -> dict[str, Any]:
        # Only a signature mismatch moves on to the previous secret: an expired or malformed token is
        # refused by the first secret that verifies its signature.
        for secret in self._verify_with[:-1]:
            try:
                return self._verify(token, secret)
            except jwt.InvalidSignatureError:
                continue
        return self._verify(token, self._verify_with[-1])

    def decode(self, token: str) -> Principal:
        try:
            claims = self._claims(token)
            sid = claims.get("sid")
            version = claims.get("ver", 0)
            if not isinstance(version, int) or isinstance(version, bool):
                raise ValueError("ver")
            return Principal(
                tenant_id=uuid.UUID(claims["tid"]),
                user_id=uuid.UUID(claims["sub"]),
                role=str(claims["role"]),
                token_version=version,
                session_id=uuid.UUID(hex=sid) if isinstance(sid, str) else None,
            )
        except (jwt.PyJWTError, KeyError, ValueError, TypeError) as exc:
            raise AuthenticationError("The access token is invalid or expired.") from exc


# ---- revocations -------------------------------------------------------------------------------------------


def membership_key(user_id: uuid.UUID, tenant_id: uuid.UUID) -> str:
    return f"auth:v:{user_id}:{tenant_id}"


def session_key(session_id: uuid.UUID) -> str:
    return f"auth:s:{session_id.hex}"


def api_key_key(key_id: uuid.UUID) -> str:
    return f"auth:k:{key_id}"


def revocation_checks(principal: Principal) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The gate's keys for ``principal`` and, per key, the value at or below which it still passes."""
    p = principal
    return _checks(p.kind, p.user_id, p.tenant_id, p.token_version, p.session_id, p.key_id)


# Formatting UUIDs into key names costs more than the gate's extra Redis work: once per token or key.
@functools.lru_cache(maxsize=16384)
def _checks(
    kind: str,
    user_id: uuid.UUID | None,
    tenant_id: uuid.UUID,
    version: int,
    session_id: uuid.UUID | None,
    key_id: uuid.UUID | None,
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    if kind == "api_key":
        return ((api_key_key(key_id),), (0,)) if key_id is not None else ((), ())
    if user_id is None:
        return (), ()
    keys = [membership_key(user_id, tenant_id)]
    floors = [version]
    if session_id is not None:
        keys.append(session_key(session_id))
        floors.append(0)
    return tuple(keys), tuple(floors)


@dataclass(frozen=True, slots=True)
class Revocation:
    key: str
    value: int  # tokens whose floor is below this are refused
    ttl_seconds: int


def membership_revocation(user_id: uuid.UUID, tenant_id: uuid.UUID, below: int, access_ttl: int) -> Revocation:
    return Revocation(membership_key(user_id, tenant_id), below, access_ttl + LEEWAY_SECONDS + 60)


def session_revocation(session_id: uuid.UUID, access_ttl: int) -> Revocation:
    return Revocation(session_key(session_id), 1, access_ttl + LEEWAY_SECONDS + 60)


def api_key_revocation(key_id: uuid.UUID) -> Revocation:
    return Revocation(api_key_key(key_id), 1, KEY_REVOCATION_SECONDS)


def queue_revocation(info: dict[str, Any], revocation: Revocation) -> None:
    """Remember a revocation in a session's ``info``; it is published after that session commits."""
    info.setdefault(_PENDING, []).append(revocation)


def take_revocations(info: dict[str, Any]) -> list[Revocation]:
    return list(info.pop(_PENDING, ()))


# Raise a key to ``value`` (never lower it: a late, smaller write must not undo a removal) and set its TTL;
# then tell every API process's token leases (the last ARGV is the channel, app/lib/gate_events.py).
PUBLISH_LUA: Final = """
for i = 1, #KEYS do
  local value = tonumber(ARGV[2 * i - 1])
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  if value >= current then
    redis.call('SET', KEYS[i], value, 'EX', ARGV[2 * i])
  end
end
redis.call('PUBLISH', ARGV[2 * #KEYS + 1], 'r')
return #KEYS
"""


async def publish_revocations(redis: Any, revocations: list[Revocation]) -> None:
    """Write revocations to Redis (one EVAL). Raises the client's error when Redis cannot be reached."""
    if not revocations:
        return
    notify_local(REVOCATION)  # this process's token leases: dropped before the change's request answers
    args: list[Any] = []
    for r in revocations:
        args += [r.value, r.ttl_seconds]
    await redis.eval(PUBLISH_LUA, len(revocations), *(r.key for r in revocations), *args, CHANNEL)
