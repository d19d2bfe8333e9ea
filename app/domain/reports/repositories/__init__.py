"""Every SQL statement of the reports area (tenant-scoped; the one cross-tenant read goes through a function)."""

from app.domain.reports.repositories._by_day import HistoryRepository
from app.domain.reports.repositories._reconciliations import ROW_COLUMNS, ReconciliationRepository
from app.domain.reports.repositories._settings import SettingsRepository
from app.domain.reports.repositories._sheets import SheetLinkRepository
from app.domain.reports.repositories._stock import PRODUCT_COLUMNS, FilePageSpec, ProductScope, ReportRepository
from app.domain.reports.repositories._system import due_daily_reports

__all__ = [
    "PRODUCT_COLUMNS",
    "ROW_COLUMNS",
    "FilePageSpec",
    "HistoryRepository",
    "ProductScope",
    "ReconciliationRepository",
    "ReportRepository",
    "SettingsRepository",
    "SheetLinkRepository",
    "due_daily_reports",
]
