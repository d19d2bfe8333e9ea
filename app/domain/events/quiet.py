"""Quiet hours in the tenant's time zone (pure): is now inside them, and when do they end?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time
    timezone: str

    def held_until(self, now: datetime) -> datetime | None:
        """The UTC instant the current quiet period ends, or None when ``now`` is outside quiet hours.

        ``start == end`` means no quiet hours; ``start > end`` wraps midnight (22:00–08:00).
        """
        if self.start == self.end:
            return None
        tz = zone(self.timezone)
        local = now.astimezone(tz)
        t = local.time().replace(tzinfo=None)
        if self.start < self.end:
            if not (self.start <= t < self.end):
                return None
            end_day = local.date()
        else:
            if t >= self.start:
                end_day = local.date() + timedelta(days=1)
            elif t < self.end:
                end_day = local.date()
            else:
                return None
        return datetime.combine(end_day, self.end, tzinfo=tz).astimezone(UTC)


def parse_hhmm(value: str) -> time:
    """``"22:00"`` → time(22, 0); raises ValueError on anything else."""
    hours, _, minutes = value.partition(":")
    if len(hours) != 2 or len(minutes) != 2 or not (hours.isdigit() and minutes.isdigit()):
        raise ValueError("expected HH:MM")
    return time(int(hours), int(minutes))
