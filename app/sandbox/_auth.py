"""WB token issue and checks (JWTs shaped like WB's), Ozon key checks.

WB convention reproduced here: the token is a JWT whose payload carries `id` (token id), `sid` (seller
id), `iat`, `exp`, `acc` (1 base, 2 test, 3 personal, 4 service), `for` ("self" for personal,
"asid:<uuid>" for service), `t` (test flag) and `s`, a bitmask where category N is `s & (1 << N)`.
The sandbox signs with HS256 and a per-app random secret; real WB tokens are signed differently, so
clients must only decode them (never verify the signature).
"""

from __future__ import annotations

import hmac
import uuid
from dataclasses import dataclass
from typing import Literal

import jwt

from app.sandbox._timeutil import DAY

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
    "read_only": 30,
}
_ALIASES = {
    "prices_and_discounts": "prices",
    "discounts_prices": "prices",
    "feedbacks_and_questions": "feedbacks",
    "questions": "feedbacks",
    "chat": "buyers_chat",
    "buyer_chat": "buyers_chat",
    "buyers_returns": "returns",
    "readonly": "read_only",
}
DEFAULT_CATEGORIES = ("content", "analytics", "marketplace", "statistics")

_TYPE_CLAIMS: dict[TokenType, int] = {"base": 1, "test": 2, "personal": 3, "service": 4}


def category_name(raw: str) -> str | None:
    """Normalise a category name ("Prices and discounts", "buyers-chat", …); None when unknown."""
    key = "_".join(raw.strip().lower().replace("-", " ").replace("_", " ").split())
    key = _ALIASES.get(key, key)
    return key if key in CATEGORY_BITS else None


def category_mask(names: list[str]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CATEGORY_BITS[name]
    return mask


def mask_categories(mask: int) -> list[str]:
    return [name for name, bit in CATEGORY_BITS.items() if mask & (1 << bit)]


@dataclass(slots=True)
class WbToken:
    token: str
    token_id: str
    seller_sid: str
    token_type: TokenType
    mask: int
    issued_at: float
    expires_at: float

    def allows(self, category_bit: int) -> bool:
        return bool(self.mask & (1 << category_bit))


def issue_wb_token(
    secret: bytes, *, seller_sid: str, mask: int, token_type: TokenType, now: float, expires_in_days: int
) -> WbToken:
    """Sign a WB-shaped JWT."""
    token_id = str(uuid.uuid4())
    iat = int(now)
    exp = int(now + expires_in_days * DAY)
    payload: dict[str, object] = {
        "id": token_id,
        "sid": seller_sid,
        "iat": iat,
        "exp": exp,
        "acc": _TYPE_CLAIMS[token_type],
    }
    if token_type == "personal":
        payload["for"] = "self"
    elif token_type == "service":
        payload["for"] = f"asid:{uuid.uuid4()}"
    payload["t"] = token_type == "test"
    payload["s"] = mask
    token = jwt.encode(payload, secret, algorithm="HS256")
    return WbToken(token, token_id, seller_sid, token_type, mask, float(iat), float(exp))


class WbAuthError(Exception):
    """The token cannot be used; the message is the `detail` of WB's 401 document."""


def raw_token(header: str | None) -> str:
    if not header or not header.strip():
        raise WbAuthError("token problem; empty Authorization header")
    value = header.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value


def explain_unknown_token(secret: bytes, token: str) -> str:
    """Why a token that is not (or no longer) registered is refused, in WB's words."""
    try:
        jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False})
    except jwt.InvalidSignatureError:
        return "token problem; token signature is invalid"
    except jwt.PyJWTError as exc:
        return f"token problem; token is malformed: {exc}"
    return "token problem; token is revoked"


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
