"""The Wildberries orders stage (``fetch_wildberries.fetch_orders``) over WB's HTTP protocol: a local server
(httpx's ``MockTransport``) answers ``GET /api/v1/supplier/orders`` as WB does, pages ending in an empty one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import msgspec
import pytest

from app.domain.sync.fetch_wildberries import _moscow, fetch_orders
from app.domain.sync.model import Snapshot
from app.integrations.wildberries import WildberriesClient

MSK = timezone(timedelta(hours=3))
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)

# As WB might send a line: its own key order and spacing, a field ``OrderLine`` does not declare (WB adds
# fields from time to time), one it declares left out (``sticker``), and Cyrillic text as UTF-8.
LINE = (
    '{"srid": "11.rab12cd34ef.0.0", "gNumber": "98765", "date": "2026-11-20T12:34:56",'
    ' "lastChangeDate":"2026-11-21T01:02:03", "nmId": 12345678, "barcode": "2000000000012",'
    ' "warehouseName": "Коледино", "warehouseType": "Склад WB", "techSize": "42",'
    ' "isCancel": false, "cancelDate": "0001-01-01T00:00:00", "paymentSaleAmount": 997}'
).encode()


async def _fetch(pages: list[bytes]) -> tuple[Snapshot, list[str]]:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/supplier/orders"
        asked.append(request.url.params["dateFrom"])
        return httpx.Response(200, content=pages[len(asked) - 1] if len(asked) <= len(pages) else b"[]")

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = WildberriesClient("test-token", base_url="http://wb.test", http=http, limiter=None, limiter_key="t")
        snapshot = Snapshot()
        await fetch_orders(client, snapshot, NOW, None)
    return snapshot, asked


async def test_a_line_is_kept_as_wb_sent_it_every_field_and_no_more():
    snapshot, asked = await _fetch([b"[" + LINE + b"]"])
    assert snapshot.orders is not None and len(snapshot.orders) == 1
    (row,) = list(snapshot.orders.copy_rows())
    # The text the writer stores is WB's own: nothing dropped, nothing filled in, nothing re-ordered.
    assert row[-1] == LINE.decode()
    stored = msgspec.json.decode(row[-1])
    assert stored["paymentSaleAmount"] == 997 and "sticker" not in stored
    # The columns still come from the decoded line.
    assert row[0] == "11.rab12cd34ef.0.0" and row[1] == "98765" and row[2] == "12345678"
    assert row[7] == datetime(2026, 11, 20, 9, 34, 56, tzinfo=UTC) and str(row[8]) == "2026-11-20"
    assert row[9] is False and row[10] is None
    assert snapshot.orders_cursor == "2026-11-21T01:02:03"
    assert asked == ["2026-10-31T00:00:00", "2026-11-21T01:02:03"]  # 30 whole Moscow days, then the next page


async def test_a_line_given_again_on_the_next_page_is_kept_in_its_later_form():
    later = LINE.replace(b'"isCancel": false', b'"isCancel": true').replace(
        b'"cancelDate": "0001-01-01T00:00:00"', b'"cancelDate": "2026-11-21T10:00:00"'
    )
    other = LINE.replace(b"11.rab12cd34ef.0.0", b"12.rab12cd34ef.0.0")
    snapshot, _ = await _fetch([b"[" + LINE + b"]", b"[" + later + b"," + other + b"]"])
    assert snapshot.orders is not None
    rows = {row[0]: row for row in snapshot.orders.copy_rows()}
    assert set(rows) == {"11.rab12cd34ef.0.0", "12.rab12cd34ef.0.0"}
    assert rows["11.rab12cd34ef.0.0"][-1] == later.decode() and rows["11.rab12cd34ef.0.0"][9] is True
    assert rows["11.rab12cd34ef.0.0"][10] == datetime(2026, 11, 21, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-20T12:34:56", datetime(2026, 11, 20, 12, 34, 56, tzinfo=MSK)),  # WB's usual: Moscow, no offset
        ("2026-11-20T12:34:56.250", datetime(2026, 11, 20, 12, 34, 56, 250_000, tzinfo=MSK)),
        ("2026-11-20T12:34", datetime(2026, 11, 20, 12, 34, tzinfo=MSK)),
        # A date alone: its Moscow midnight (not "03:00", as ``fromisoformat`` reads "2026-11-20+03:00").
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=MSK)),
        ("2026-11-20T09:34:56Z", datetime(2026, 11, 20, 9, 34, 56, tzinfo=UTC)),  # an offset of its own is kept
        ("2026-11-20T14:34:56+05:00", datetime(2026, 11, 20, 14, 34, 56, tzinfo=timezone(timedelta(hours=5)))),
        ("2026-11-20T12:34:56-01:00", datetime(2026, 11, 20, 12, 34, 56, tzinfo=timezone(-timedelta(hours=1)))),
        ("2026-11-20 12:34:56", datetime(2026, 11, 20, 12, 34, 56, tzinfo=MSK)),
        (datetime(2026, 11, 20, 12, 34, 56), datetime(2026, 11, 20, 12, 34, 56, tzinfo=MSK)),
        (datetime(2026, 11, 20, 9, 34, 56, tzinfo=UTC), datetime(2026, 11, 20, 9, 34, 56, tzinfo=UTC)),
        ("0001-01-01T00:00:00", None),  # "not cancelled"
        ("1999-12-31T23:59:59", None),
        (datetime(1, 1, 1), None),
        ("", None),
        (None, None),
    ],
)
def test_moscow_dates(value, expected):
    got = _moscow(value)
    assert got == expected
    if got is not None:
        assert got.utcoffset() == expected.utcoffset()


def test_a_date_that_is_not_one_fails_as_before():
    with pytest.raises(ValueError):
        _moscow("20.11.2026 12:34")
