"""The organization's report settings and a product's restock settings."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

Locale = Literal["ru", "en"]
WindowDays = Literal[7, 14, 30]
HHMM = Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["08:00"])]
DaysSetting = Annotated[int, msgspec.Meta(ge=0, le=365)]


class ReportSettings(msgspec.Struct):
    """``locale``: the language of report headers (the default of ``?lang=``); ``daily_report_time``: when the
    daily report goes to linked Telegram chats and the ``report.ready`` webhook, in ``timezone`` (null = off);
    ``report_window_days``: the order window of the daily report, the Telegram ``/report`` and Sheets pushes;
    ``lead_time_days`` + ``safety_days``: the restock target cover."""

    locale: Locale
    timezone: str
    daily_report_time: str | None
    report_window_days: int
    lead_time_days: int
    safety_days: int
    last_daily_report_on: date | None = None
    updated_at: datetime | None = None


class ReportSettingsUpdate(msgspec.Struct, forbid_unknown_fields=True):
    locale: Locale | UnsetType = UNSET
    daily_report_time: HHMM | UnsetType | None = UNSET
    report_window_days: WindowDays | UnsetType = UNSET
    lead_time_days: DaysSetting | UnsetType = UNSET
    safety_days: DaysSetting | UnsetType = UNSET


class RestockSettings(msgspec.Struct):
    """A product's own lead time / safety days (null = the organization's) and what applies."""

    product_id: uuid.UUID
    lead_time_days: int | None
    safety_days: int | None
    effective_lead_time_days: int
    effective_safety_days: int


class RestockSettingsUpdate(msgspec.Struct, forbid_unknown_fields=True):
    lead_time_days: DaysSetting | None = None
    safety_days: DaysSetting | None = None
