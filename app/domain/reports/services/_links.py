"""Signed, expiring download links for a report (the ``report.ready`` webhook carries one).

A link names *which* report (organization, kind, format, language, window) and until when it is valid, and
carries an HMAC-SHA256 signature under a key derived from ``STOCK_TRACKER_JWT_SECRET``; nothing is stored. The
report is rendered when the link is opened, from the data as it is then (a day's data changes only when a
sync runs). Whoever holds the link can download the report until it expires, like a pre-signed object-store
URL: it is meant for the webhook receiver, which is authenticated by the webhook's own signature. Rotating
the JWT secret invalidates every link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from app.lib.errors import PermissionDeniedError

LINK_TTL = timedelta(days=7)
DOWNLOAD_PATH = "/api/v1/reports/download"
_LABEL = b"stock-tracker report download links v1"


class ReportLinkInvalid(PermissionDeniedError):
    code = "report_link_invalid"
    title = "The download link is invalid or has expired"


class ReportLink(msgspec.Struct, forbid_unknown_fields=True):
    """What a link lets its holder download (short keys: the link goes into URLs)."""

    tenant: uuid.UUID = msgspec.field(name="t")
    report: Literal["stock"] = msgspec.field(name="r", default="stock")
    format: Literal["csv", "xlsx"] = msgspec.field(name="f", default="xlsx")
    lang: Literal["ru", "en"] = msgspec.field(name="l", default="ru")
    window: int = msgspec.field(name="w", default=30)
    expires: int = msgspec.field(name="e", default=0)  # unix seconds


def link_key(jwt_secret: str) -> bytes:
    return hmac.new(jwt_secret.encode(), _LABEL, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, link: ReportLink) -> str:
    body = _b64(msgspec.json.encode(link))
    signature = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    return f"{body}.{signature}"


def verify(key: bytes, token: str, now: datetime) -> ReportLink:
    """The link's content, or ``ReportLinkInvalid`` (403) for a forged, altered or expired one."""
    body, _, signature = token.partition(".")
    expected = _b64(hmac.new(key, body.encode("utf-8", "surrogatepass"), hashlib.sha256).digest())
    # Bytes on both sides: compare_digest refuses str with non-ASCII characters (a TypeError, not a refusal).
    if not signature or not hmac.compare_digest(signature.encode("utf-8", "surrogatepass"), expected.encode()):
        raise ReportLinkInvalid("The download link is not valid.")
    try:
        link = msgspec.json.decode(_unb64(body), type=ReportLink)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        raise ReportLinkInvalid("The download link is not valid.") from None
    if link.expires < int(now.timestamp()):
        raise ReportLinkInvalid("The download link has expired; the next daily report brings a new one.")
    return link


def download_url(public_url: str, token: str) -> str:
    """The absolute URL when ``STOCK_TRACKER_PUBLIC_URL`` is set (else the path alone)."""
    return f"{public_url.rstrip('/')}{DOWNLOAD_PATH}?token={token}"
