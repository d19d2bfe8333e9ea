"""Cursor (keyset) pagination: the one way every list endpoint pages.

A list is ordered by a unique key (``(created_at, id)``, or ``id``). A page asks its repository for
``limit + 1`` rows after the decoded cursor; the extra row, when it comes, proves there is a next page, and
the cursor is the key of the last row shown. Cursors are opaque to clients (URL-safe base64 of the key's
parts joined by ``|``); anything that does not decode to the expected parts is a 422, never a 500.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from app.lib.errors import FieldError, ValidationError

T = TypeVar("T")
After = tuple[Any, ...] | None
_SEPARATOR = "|"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """Rows of one page and the cursor of the next (None on the last page)."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(*parts: Any) -> str:
    """An opaque cursor for a key (UUIDs, datetimes, ints or strings without ``|``)."""
    raw = []
    for part in parts:
        text = part.isoformat() if isinstance(part, datetime) else str(part)
        if _SEPARATOR in text:
            raise ValueError(f"a cursor part cannot contain {_SEPARATOR!r}")
        raw.append(text)
    return base64.urlsafe_b64encode(_SEPARATOR.join(raw).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, *types: type) -> After:
    """The key a cursor carries, typed part by part; None for no cursor (the first page)."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        parts = raw.split(_SEPARATOR)
        if len(parts) != len(types):
            raise ValueError("wrong arity")
        return tuple(_parse(part, typ) for part, typ in zip(parts, types, strict=True))
    except (ValueError, UnicodeDecodeError) as exc:  # binascii.Error is a ValueError
        raise ValidationError(
            "The cursor is invalid.",
            errors=[FieldError(field="cursor", message="invalid cursor", source="query")],
        ) from exc


def _parse(part: str, typ: type) -> Any:
    if typ is datetime:
        return datetime.fromisoformat(part)
    if typ is uuid.UUID:
        return uuid.UUID(part)
    return typ(part)


def cut_page(rows: Sequence[T], limit: int, key: Callable[[T], tuple[Any, ...]]) -> Page[T]:
    """A page from up to ``limit + 1`` rows: the first ``limit``, and a cursor when there were more."""
    if limit < 1:
        raise ValueError("a page holds at least one row")
    if len(rows) <= limit:
        return Page(items=list(rows))
    items = list(rows[:limit])
    return Page(items=items, next_cursor=encode_cursor(*key(items[-1])))


async def paginate(
    fetch: Callable[[After, int], Awaitable[Sequence[T]]],
    *,
    cursor: str | None,
    limit: int,
    key: Callable[[T], tuple[Any, ...]],
    types: tuple[type, ...],
) -> Page[T]:
    """Decode ``cursor`` into a key of ``types``, fetch ``limit + 1`` rows after it, cut the page.

    ``fetch(after, n)`` returns at most ``n`` rows strictly after the key ``after`` (None: from the start)
    in the list's order; ``key(row)`` is that row's key, in the same parts as ``types``.
    """
    after = decode_cursor(cursor, *types)
    rows = await fetch(after, limit + 1)
    return cut_page(rows, limit, key)
