"""HTTP endpoints of the reports area (registered in ``app/server/routes.py``)."""

from app.domain.reports.controllers._links import RestockSettingsController, SheetLinkController
from app.domain.reports.controllers._reconciliations import ReconciliationController, ReconciliationCreate
from app.domain.reports.controllers._reports import CoverController, ReportController, ReportDownloadController

__all__ = [
    "CoverController",
    "ReconciliationController",
    "ReconciliationCreate",
    "ReportController",
    "ReportDownloadController",
    "RestockSettingsController",
    "SheetLinkController",
]
