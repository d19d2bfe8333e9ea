"""The API-key format and its keyed hash (pure functions: no I/O, no framework).

A key is ``stk_`` + 32 base62 characters of randomness (~190 bits) + a 6-character base62 CRC32 of them,
e.g. ``stk_4Qx…Zp0a9kQm``. The fixed prefix makes keys recognisable (secret scanners, logs, support) and
the checksum lets the server refuse mistyped or made-up keys without a database round trip. The server
stores only ``HMAC-SHA256(api_key_secret, key)``: a leaked table cannot be replayed, and a lookup is one
indexed equality.

Rotation (``…_PREVIOUS``): a key hashed under an older secret is found by trying the previous hash keys
after the current one misses (``previous_hash_secrets``); it is then re-hashed under the current secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib

PREFIX = "stk_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY = 32
_CHECK = 6
LENGTH = len(PREFIX) + _BODY + _CHECK
DISPLAY_PREFIX_LENGTH = len(PREFIX) + 4
_DERIVATION_LABEL = b"stock-tracker api-key hash v1"
_SHAPE = re.compile(rf"{PREFIX}[0-9A-Za-z]{{{_BODY + _CHECK}}}")


def _base62(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, rem = divmod(value, 62)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECK)


def generate() -> str:
    """A new key (returned to its creator once, never stored)."""
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_BODY))
    return PREFIX + body + _checksum(body)


def looks_like_key(token: str) -> bool:
    """Whether a bearer token is meant to be an API key (as opposed to a JWT)."""
    return token.startswith(PREFIX)


def well_formed(token: str) -> bool:
    """Prefix, length, alphabet and checksum are right (no database needed to refuse the rest)."""
    if _SHAPE.fullmatch(token) is None:
        return False
    body, check = token[len(PREFIX) : -_CHECK], token[-_CHECK:]
    return hmac.compare_digest(_checksum(body), check)


def hash_secret(api_key_secret: str, jwt_secret: str) -> bytes:
    """The HMAC key: ``STOCK_TRACKER_API_KEY_SECRET`` if set, else one derived from the JWT secret."""
    if api_key_secret:
        return api_key_secret.encode()
    return hmac.new(jwt_secret.encode(), _DERIVATION_LABEL, hashlib.sha256).digest()


def previous_hash_secrets(
    api_key_secret: str, jwt_secret: str, api_key_secret_previous: str = "", jwt_secret_previous: str = ""
) -> list[bytes]:
    """The HMAC keys keys may still be stored under, newest first, never the current one:

    * ``API_KEY_SECRET_PREVIOUS`` (a rotation of the API-key secret);
    * with ``API_KEY_SECRET`` set, the key derived from ``JWT_SECRET``: what keys were hashed with before
      an ``API_KEY_SECRET`` was configured (setting one for the first time must not lock every key out);
    * the key derived from ``JWT_SECRET_PREVIOUS`` (a JWT rotation where keys used the derived key).
    """
    current = hash_secret(api_key_secret, jwt_secret)
    candidates: list[bytes] = []
    if api_key_secret_previous:
        candidates.append(hash_secret(api_key_secret_previous, jwt_secret))
    if api_key_secret and jwt_secret:
        candidates.append(hash_secret("", jwt_secret))
    if jwt_secret_previous:
        candidates.append(hash_secret("", jwt_secret_previous))
    out: list[bytes] = []
    for c in candidates:
        if c != current and c not in out:
            out.append(c)
    return out


def key_hash(secret: bytes, key: str) -> str:
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]
