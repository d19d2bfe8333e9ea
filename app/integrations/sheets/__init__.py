"""Google Sheets: ``SheetsClient`` (service account, cached token, retries, one-request pushes) and errors."""

from app.integrations.sheets._account import ServiceAccount, parse_service_account
from app.integrations.sheets._client import (
    DEFAULT_API_BASE,
    DEFAULT_TOKEN_URL,
    PushResult,
    SheetsClient,
    Spreadsheet,
    TokenCache,
    ValueRange,
)
from app.integrations.sheets._errors import (
    SheetsCredentialsError,
    SheetsError,
    SheetsGrantRevoked,
    SheetsNotFound,
    SheetsPermissionDenied,
    SheetsUnavailable,
)
from app.integrations.sheets._format import MAX_MARK_RANGES, format_requests

__all__ = [
    "DEFAULT_API_BASE",
    "DEFAULT_TOKEN_URL",
    "MAX_MARK_RANGES",
    "PushResult",
    "ServiceAccount",
    "SheetsClient",
    "SheetsCredentialsError",
    "SheetsError",
    "SheetsGrantRevoked",
    "SheetsNotFound",
    "SheetsPermissionDenied",
    "SheetsUnavailable",
    "Spreadsheet",
    "TokenCache",
    "ValueRange",
    "format_requests",
    "parse_service_account",
]
