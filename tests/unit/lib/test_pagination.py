"""The one cursor-pagination helper: page cutting at its edges, cursors that round-trip, and every malformed
cursor answered as a 422 validation problem naming the ``cursor`` query parameter."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from app.lib.errors import FieldError, ValidationError
from app.lib.pagination import Page, cut_page, decode_cursor, encode_cursor, paginate

IDS = sorted(uuid.UUID(int=i) for i in range(1, 8))


def _key(row: uuid.UUID) -> tuple[Any, ...]:
    return (row,)


def _store(rows: list[uuid.UUID]):
    """A fake repository over ``rows`` in id order: at most ``n`` rows strictly after the key."""
    calls: list[tuple[Any, int]] = []

    async def fetch(after: tuple[Any, ...] | None, n: int) -> list[uuid.UUID]:
        calls.append((after, n))
        return [r for r in rows if after is None or r > after[0]][:n]

    return fetch, calls


def _page(rows: list[uuid.UUID], cursor: str | None, limit: int) -> tuple[Page[uuid.UUID], list[Any]]:
    fetch, calls = _store(rows)
    page = asyncio.run(paginate(fetch, cursor=cursor, limit=limit, key=_key, types=(uuid.UUID,)))
    return page, calls


def test_an_empty_list_is_one_empty_last_page():
    page, calls = _page([], None, 3)
    assert page == Page(items=[], next_cursor=None)
    assert calls == [(None, 4)]  # limit + 1 is asked for, from the start


def test_exactly_limit_rows_is_the_last_page():
    page, _ = _page(IDS[:3], None, 3)
    assert page.items == IDS[:3] and page.next_cursor is None


def test_limit_plus_one_rows_cut_to_limit_with_a_cursor_at_the_last_row_shown():
    page, _ = _page(IDS[:4], None, 3)
    assert page.items == IDS[:3]
    assert page.next_cursor is not None and decode_cursor(page.next_cursor, uuid.UUID) == (IDS[2],)


def test_following_cursors_walks_every_row_once():
    seen: list[uuid.UUID] = []
    cursor = None
    pages = 0
    while True:
        page, calls = _page(IDS, cursor, 3)
        assert calls[0][0] == (decode_cursor(cursor, uuid.UUID) if cursor else None)
        seen += page.items
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == IDS and pages == 3  # 3 + 3 + 1


def test_tuple_keys_with_aware_datetimes_round_trip():
    at = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=3)))
    rid = uuid.uuid4()
    cursor = encode_cursor(at, rid)
    decoded = decode_cursor(cursor, datetime, uuid.UUID)
    assert decoded == (at, rid)
    assert decoded is not None and decoded[0].utcoffset() == timedelta(hours=3)
    rows = [(at + timedelta(seconds=i), uuid.UUID(int=i)) for i in range(5)]
    page = cut_page(rows, 2, key=lambda r: r)
    assert page.items == rows[:2]
    assert decode_cursor(page.next_cursor, datetime, uuid.UUID) == rows[1]


def test_a_cursor_is_url_safe_without_padding():
    cursor = encode_cursor(datetime(2026, 1, 1, tzinfo=UTC), uuid.UUID(int=2**128 - 1))
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor


def test_no_cursor_is_the_first_page():
    assert decode_cursor(None, uuid.UUID) is None
    assert decode_cursor("", uuid.UUID) is None


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("cursor", "types"),
    [
        ("%%%not-a-cursor", (uuid.UUID,)),  # not base64
        ("A", (uuid.UUID,)),  # truncated base64
        (base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(), (uuid.UUID,)),  # not UTF-8
        (_b64("not-a-uuid"), (uuid.UUID,)),  # a part of the wrong type
        (_b64("yesterday|" + str(uuid.UUID(int=1))), (datetime, uuid.UUID)),  # a bad datetime
        (_b64(str(uuid.UUID(int=1))), (datetime, uuid.UUID)),  # too few parts
        (_b64(f"{uuid.UUID(int=1)}|{uuid.UUID(int=2)}"), (uuid.UUID,)),  # too many parts
        (encode_cursor(uuid.UUID(int=1)), (datetime, uuid.UUID)),  # a cursor of another list
    ],
)
def test_a_malformed_cursor_is_a_422_naming_the_cursor(cursor: str, types: tuple[type, ...]):
    with pytest.raises(ValidationError) as caught:
        decode_cursor(cursor, *types)
    err = caught.value
    assert err.status_code == 422 and err.code == "validation_error"
    assert err.extra["errors"] == [FieldError(field="cursor", message="invalid cursor", source="query")]


def test_a_malformed_cursor_never_reaches_the_repository():
    fetch, calls = _store(IDS)
    with pytest.raises(ValidationError):
        asyncio.run(paginate(fetch, cursor="%%%", limit=3, key=_key, types=(uuid.UUID,)))
    assert calls == []


def test_a_part_holding_the_separator_cannot_be_encoded():
    with pytest.raises(ValueError):
        encode_cursor("a|b")


def test_a_page_holds_at_least_one_row():
    with pytest.raises(ValueError):
        cut_page(IDS, 0, key=_key)
