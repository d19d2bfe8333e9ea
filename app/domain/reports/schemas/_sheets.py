"""Google Sheets links: where the stock report is written, with a service account (the key is never shown)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from app.domain.reports.schemas._settings import Locale, WindowDays
from app.domain.reports.schemas._stock import Per

SpreadsheetId = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]
# Google's own rules for a sheet title, minus the characters A1 ranges would need quoting rules for.
SheetName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\[\]:*?/\\']+$")]
ServiceAccountKey = Annotated[
    dict[str, Any],
    msgspec.Meta(description="The service account's JSON key file exactly as Google downloads it (encrypted at rest)."),
]
LinkStatus = Literal["active", "invalid"]


class SheetLinkCreate(msgspec.Struct, forbid_unknown_fields=True):
    """Share the spreadsheet with the key's ``client_email`` (as an editor) before the first push."""

    spreadsheet_id: SpreadsheetId
    service_account: ServiceAccountKey
    sheet_name: SheetName = "Stock"
    lang: Locale | None = None
    window: WindowDays | None = None
    per: Per = "product"
    connection_id: uuid.UUID | None = None


class SheetLinkUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """A new key (or spreadsheet) re-activates an invalid link."""

    spreadsheet_id: SpreadsheetId | UnsetType = UNSET
    service_account: ServiceAccountKey | UnsetType = UNSET
    sheet_name: SheetName | UnsetType = UNSET
    lang: Locale | UnsetType | None = UNSET
    window: WindowDays | UnsetType | None = UNSET
    per: Per | UnsetType = UNSET
    connection_id: uuid.UUID | UnsetType | None = UNSET


class SheetLink(msgspec.Struct):
    """``status: invalid`` (with ``status_reason``) until the key or the sharing is fixed; ``lang`` and
    ``window`` null follow the organization's report settings."""

    id: uuid.UUID
    spreadsheet_id: str
    sheet_name: str
    client_email: str
    status: LinkStatus
    status_reason: str | None
    lang: str | None
    window: int | None
    per: str
    connection_id: uuid.UUID | None
    last_push_at: datetime | None
    last_push_status: str | None
    last_push_rows: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class SheetLinkList(msgspec.Struct):
    items: list[SheetLink]


class SheetPushAccepted(msgspec.Struct):
    sheet_link_id: uuid.UUID
    job_id: str
