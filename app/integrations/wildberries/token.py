"""What a Wildberries token says about itself: type, categories, expiry, seller (decoded, never verified).

A WB token is a JWT whose payload carries ``acc`` (1 base, 2 test, 3 personal, 4 service), ``for``
("self" / "asid:<service>"), ``t`` (test), ``sid`` (seller), ``exp`` and ``s``: a bitmask where category
bit N is ``s & (1 << N)``. We are not WB and hold no key, so the signature is not checked; the marketplace
is the judge of validity, this only lets us warn early (missing categories, expiry, wrong type).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import jwt
import msgspec

TokenType = Literal["personal", "service", "base", "test"]

CATEGORY_BITS: dict[str, int] = {
    "content": 1,
    "analytics": 2,
    "prices": 3,
    "marketplace": 4,
    "statistics": 5,
    "promotion": 6,
    "feedbacks": 7,
    "buyers_chat": 9,
    "supplies": 10,
    "returns": 11,
    "documents": 12,
    "finance": 13,
    "users": 16,
}
READ_ONLY_BIT = 30
REQUIRED_CATEGORIES = frozenset({"content", "analytics", "marketplace", "statistics"})

# "Base with secret" looks exactly like Base in the payload (the secret travels in a header), so acc=1 → base.
_TYPES: dict[int, TokenType] = {1: "base", 2: "test", 3: "personal", 4: "service"}


class TokenInfo(msgspec.Struct, frozen=True, kw_only=True):
    """Decoded claims; ``decoded`` False (and every other field unknown) when the token is not a JWT."""

    decoded: bool
    type: TokenType | None = None
    categories: frozenset[str] = frozenset()
    read_only: bool | None = None
    expires_at: datetime | None = None
    issued_at: datetime | None = None
    seller_id: str | None = None
    token_id: str | None = None
    service_id: str | None = None

    @property
    def missing_categories(self) -> frozenset[str]:
        """Required categories the token lacks (empty when the token could not be decoded: unknown)."""
        return REQUIRED_CATEGORIES - self.categories if self.decoded else frozenset()

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


def _when(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _type(claims: dict[str, Any]) -> TokenType | None:
    acc = claims.get("acc")
    if isinstance(acc, int) and not isinstance(acc, bool) and acc in _TYPES:
        return _TYPES[acc]
    audience = claims.get("for")
    if claims.get("t") is True:
        return "test"
    if audience == "self":
        return "personal"
    if isinstance(audience, str) and audience.startswith("asid:"):
        return "service"
    return None


def parse_token(token: str) -> TokenInfo:
    """Decode a WB token's payload without verifying it; a token that is not a JWT yields unknowns."""
    raw = token.strip()
    if raw[:7].lower() == "bearer ":
        raw = raw[7:].strip()
    try:
        claims = jwt.decode(raw, options={"verify_signature": False})
    except jwt.PyJWTError:
        return TokenInfo(decoded=False)
    if not isinstance(claims, dict):
        return TokenInfo(decoded=False)
    raw_mask = claims.get("s")
    mask = raw_mask if isinstance(raw_mask, int) and not isinstance(raw_mask, bool) and raw_mask >= 0 else None
    categories = frozenset(n for n, bit in CATEGORY_BITS.items() if mask is not None and mask & (1 << bit))
    audience = _text(claims.get("for"))
    return TokenInfo(
        decoded=True,
        type=_type(claims),
        categories=categories,
        read_only=bool(mask & (1 << READ_ONLY_BIT)) if mask is not None else None,
        expires_at=_when(claims.get("exp")),
        issued_at=_when(claims.get("iat")),
        seller_id=_text(claims.get("sid")),
        token_id=_text(claims.get("id")),
        service_id=audience[5:] if audience and audience.startswith("asid:") else None,
    )
