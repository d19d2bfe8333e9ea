"""The month the limiter reports and counts in, worked out once a month per process, is the calendar month
(UTC) the request falls in — to the microsecond around its first instant — and the rate-limit headers built
from it read as before."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.domain.apikeys import usage
from app.lib.ratelimit import WindowState
from app.server.ratelimit import Month, _values, rate_limit_headers, this_month

NEW_YEAR = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "at",
    [
        NEW_YEAR - timedelta(microseconds=1),
        NEW_YEAR,
        NEW_YEAR + timedelta(microseconds=1),
        datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC),  # a leap day
        datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
    ],
)
def test_the_month_a_request_falls_in(at):
    month = this_month(at.timestamp())
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    assert (month.start, month.end) == (start.timestamp(), end.timestamp())
    assert month.seconds == (end - start).total_seconds()
    tenant = uuid.uuid4()
    assert month.usage_key(tenant) == usage.current_usage_key(tenant, at)
    window = month.window(1000, 1001, at.timestamp())
    assert window.remaining == 0 and window.limit == 1000
    assert window.reset_seconds == pytest.approx((end - at).total_seconds(), abs=1e-6)


def test_rolls_over_at_the_first_instant_and_only_then():
    before = this_month((NEW_YEAR - timedelta(microseconds=1)).timestamp())
    assert this_month((NEW_YEAR - timedelta(seconds=5)).timestamp()) is before  # kept within the month
    after = this_month(NEW_YEAR.timestamp())
    assert after is not before and after.period == "2027-01" and before.period == "2026-12"


def test_the_month_window_at_the_end_of_a_month():
    at = datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    window = this_month(at.timestamp()).window(50, 20, at.timestamp())
    assert (window.name, window.limit, window.remaining) == ("month", 50, 30)
    assert window.reset_seconds == pytest.approx(3600.0)
    assert window.seconds == 31 * 86400


def test_usage_keys_are_bounded(monkeypatch):
    monkeypatch.setattr("app.server.ratelimit._USAGE_KEYS_MAX", 2)
    month = Month(NEW_YEAR.timestamp())
    tenants = [uuid.uuid4() for _ in range(5)]
    for tenant in tenants:
        assert month.usage_key(tenant) == usage.current_usage_key(tenant, NEW_YEAR)
        assert len(month._usage_keys) <= 2


def test_headers_name_the_tightest_window_as_the_refusal_does():
    states = [
        WindowState("burst", 50, 7, 0.4, 1.0),
        WindowState("minute", 3000, 7, 59.2, 60.0),  # a tie on what is left: the longer window
        WindowState("month", 100, 90, 86000.5, 2678400.0),
    ]
    headers = dict(rate_limit_headers(b"policy", states))
    items, limit, remaining, reset = _values(states)
    assert headers[b"ratelimit"] == items.encode() == b'"burst";r=7;t=1, "minute";r=7;t=60, "month";r=90;t=86001'
    assert (headers[b"x-ratelimit-limit"], headers[b"x-ratelimit-remaining"], headers[b"x-ratelimit-reset"]) == (
        str(limit).encode(),
        str(remaining).encode(),
        str(reset).encode(),
    )
    assert headers[b"x-ratelimit-limit"] == b"3000"
