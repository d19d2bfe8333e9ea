"""The reports area's use-cases and its public surface for other areas.

``CoverService`` (velocity and days of cover: the alert evaluation and the Telegram bot use it), the stock
report (JSON pages, streamed CSV/XLSX, a grid for Google Sheets), stock by day, restock recommendations,
reconciliations with the WB cabinet export, the organization's report settings, Google Sheets links and their
pushes, the daily report and its signed download links.
"""

from app.domain.reports.repositories import ReportRepository
from app.domain.reports.services._by_day import MAX_DAYS, StockByDayQuery, StockByDayService
from app.domain.reports.services._cover import (
    MSK,
    WINDOWS,
    CoverService,
    Flows,
    cover,
    is_valid_window,
    window_between,
    window_for,
)
from app.domain.reports.services._daily import (
    DAILY_JOB,
    REPORT_READY,
    TELEGRAM_DAILY_JOB,
    ReportDownloadService,
    enqueue_due_daily_reports,
    send_daily_report,
)
from app.domain.reports.services._files import (
    Format,
    ReportFile,
    Separator,
    UnsupportedReportFormat,
    collect,
    negotiate,
)
from app.domain.reports.services._links import LINK_TTL, ReportLink, ReportLinkInvalid, link_key, sign, verify
from app.domain.reports.services._reconciliation import ReconciliationService, Upload
from app.domain.reports.services._restock import RestockQuery, RestockService
from app.domain.reports.services._settings import OrgReportSettings, ReportSettingsService, org_settings
from app.domain.reports.services._sheets import (
    PUSH_JOB,
    SHEET_LINK_INVALID,
    InvalidServiceAccount,
    PushOutcome,
    SheetLinkService,
    SheetsPusher,
    request_sheets_refresh,
)
from app.domain.reports.services._stock import ReportService, StockReportQuery, status_of

__all__ = [
    "DAILY_JOB",
    "LINK_TTL",
    "MAX_DAYS",
    "MSK",
    "PUSH_JOB",
    "REPORT_READY",
    "SHEET_LINK_INVALID",
    "TELEGRAM_DAILY_JOB",
    "WINDOWS",
    "CoverService",
    "Flows",
    "Format",
    "InvalidServiceAccount",
    "OrgReportSettings",
    "PushOutcome",
    "ReconciliationService",
    "ReportDownloadService",
    "ReportFile",
    "ReportLink",
    "ReportLinkInvalid",
    "ReportRepository",
    "ReportService",
    "ReportSettingsService",
    "RestockQuery",
    "RestockService",
    "Separator",
    "SheetLinkService",
    "SheetsPusher",
    "StockByDayQuery",
    "StockByDayService",
    "StockReportQuery",
    "UnsupportedReportFormat",
    "Upload",
    "collect",
    "cover",
    "enqueue_due_daily_reports",
    "is_valid_window",
    "link_key",
    "negotiate",
    "org_settings",
    "request_sheets_refresh",
    "send_daily_report",
    "sign",
    "status_of",
    "verify",
    "window_between",
    "window_for",
]
