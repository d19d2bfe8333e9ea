"""Bodies of the connections API. Credentials go in, never come out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
MarketplaceName = Literal["wildberries", "ozon"]


# Credentials travel in HTTP headers: printable ASCII only (anything else could not be sent at all).
_HEADER_SAFE = r"^[\x21-\x7e]+$"


class WildberriesCredentials(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=10, max_length=4096, pattern=_HEADER_SAFE)]


class OzonCredentials(msgspec.Struct, forbid_unknown_fields=True):
    client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=20, pattern=r"^[0-9]+$")]
    api_key: Annotated[str, msgspec.Meta(min_length=8, max_length=512, pattern=_HEADER_SAFE)]


class WildberriesConnectionCreate(
    msgspec.Struct, forbid_unknown_fields=True, tag="wildberries", tag_field="marketplace"
):
    """A Wildberries seller account: its API token (a JWT carrying type, categories and expiry)."""

    name: Name
    credentials: WildberriesCredentials


class OzonConnectionCreate(msgspec.Struct, forbid_unknown_fields=True, tag="ozon", tag_field="marketplace"):
    """An Ozon seller account: Client-Id and Api-Key."""

    name: Name
    credentials: OzonCredentials


# Tagged by `marketplace`, so the schema says exactly which credential fields each marketplace needs.
ConnectionCreate = WildberriesConnectionCreate | OzonConnectionCreate


class ConnectionUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


class ConnectionCredentialsUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """New credentials for the connection's marketplace (checked with the marketplace first)."""

    credentials: dict[str, str]


class TokenInfo(msgspec.Struct):
    """What a Wildberries token says about itself: type, expiry, categories (and the ones the sync needs)."""

    type: str | None
    expires_at: datetime | None
    categories: list[str]
    missing_categories: list[str]


class Connection(msgspec.Struct):
    """A marketplace account of the organization (its credentials are never returned)."""

    id: uuid.UUID
    marketplace: MarketplaceName
    name: str
    status: Literal["active", "invalid", "rate_limited", "disabled"]
    status_reason: str | None
    token: TokenInfo | None
    last_checked_at: datetime | None
    last_sync_at: datetime | None
    last_success_at: datetime | None  # the last run that succeeded (a partial or failed run does not move it)
    last_sync_status: str | None
    # When the last run started, and how the last run ended: "succeeded", "partially_failed", or the failed
    # run's error_code ("rate_limited", "abandoned", "marketplace_unavailable", "marketplace_auth", …).
    last_attempt_at: datetime | None
    last_outcome: str | None
    created_at: datetime


class ConnectionPage(msgspec.Struct):
    items: list[Connection]
    next_cursor: str | None = None
