"""Access tokens (JWT, HS256) and the principal a request acts as."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import jwt

from app.lib.clock import utcnow
from app.lib.errors import AuthenticationError
from app.lib.ids import uuid7

ALGORITHM = "HS256"
WRITE_ROLES = frozenset({"owner", "admin", "member_write"})


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user in one tenant (role) or an API key (scopes)."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    role: str
    kind: str = "user"  # "user" | "api_key"
    scopes: frozenset[str] = field(default_factory=lambda: frozenset({"read", "write"}))
    key_id: uuid.UUID | None = None

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

    def encode(self, user_id: uuid.UUID, tenant_id: uuid.UUID, role: str) -> str:
        now = utcnow()
        payload = {
            "sub": str(user_id),
            "tid": str(tenant_id),
            "role": role,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=self.ttl_seconds),
            "jti": str(uuid7()),
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def _verify(self, token: str, secret: str) -> dict[str, Any]:
        return jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=self.audience,
            issuer=self.issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
            leeway=5,
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
            return Principal(
                tenant_id=uuid.UUID(claims["tid"]), user_id=uuid.UUID(claims["sub"]), role=str(claims["role"])
            )
        except (jwt.PyJWTError, KeyError, ValueError) as exc:
            raise AuthenticationError("The access token is invalid or expired.") from exc
