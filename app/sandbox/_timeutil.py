"""Time formats the marketplaces use; the sandbox keeps time as float seconds since the epoch (UTC)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

MSK_OFFSET = 3 * 3600
MSK = timezone(timedelta(hours=3))
DAY = 86400.0
HOUR = 3600.0


def msk_naive(ts: float) -> str:
    """`2026-05-02T11:13:35`: Moscow time without an offset, as WB statistics reports print it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(ts) + MSK_OFFSET))


def msk_offset(ts: float) -> str:
    """`2024-08-16T11:19:05+03:00`, the form of the WB ping `TS` field."""
    return msk_naive(ts) + "+03:00"


def utc_z(ts: float) -> str:
    """`2024-09-30T06:52:38Z`, the timestamp form of WB problem documents."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ts)))


def utc_micro_z(us: int) -> str:
    """`2023-12-06T11:17:00.96577Z`: microseconds with trailing zeros trimmed, as WB content prints them."""
    sec, frac = divmod(us, 1_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    if frac:
        text += "." + f"{frac:06d}".rstrip("0")
    return text + "Z"


def parse_utc_micro(text: str) -> int | None:
    """Parse an RFC 3339 timestamp to epoch microseconds; naive values are UTC; None when invalid."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_msk(text: str) -> float | None:
    """Parse a WB `dateFrom` (date or date-time); naive values are Moscow time. None when invalid."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=MSK)
    return value.timestamp()


def msk_day_bounds(ts: float) -> tuple[float, float]:
    """The Moscow calendar day containing `ts`, as [start, end) epoch seconds."""
    local = ts + MSK_OFFSET
    start = local - (local % DAY) - MSK_OFFSET
    return start, start + DAY
