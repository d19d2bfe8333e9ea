"""Request and response bodies of the API-keys area."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

Scope = Literal["read", "write"]
# Printable text: no control characters (PostgreSQL cannot store NUL, and names end up in UIs and logs).
KeyName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ApiKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: KeyName
    # ["read"] or ["read", "write"]; a write key can also read.
    scopes: Annotated[
        list[Scope],
        msgspec.Meta(
            min_length=1,
            max_length=2,
            extra_json_schema={"extra": {"unique_items": True, "contains": {"const": "read"}}},
        ),
    ] = msgspec.field(default_factory=lambda: ["read"])


class ApiKey(msgspec.Struct):
    id: uuid.UUID
    name: str
    prefix: str
    last_four: str
    scopes: list[Scope]
    created_at: datetime
    created_by: uuid.UUID | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyWithSecret(ApiKey):
    """The new key, with its secret in ``key``: shown this once, never again."""

    key: str


class ApiKeyPage(msgspec.Struct):
    items: list[ApiKey]
    next_cursor: str | None = None


class ApiUsage(msgspec.Struct):
    """API-key calls this calendar month (UTC) against the plan's monthly quota."""

    period: str
    api_calls: int
    quota: int
    plan: str
