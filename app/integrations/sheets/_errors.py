"""What can go wrong talking to Google Sheets, as types the caller can act on."""

from __future__ import annotations


class SheetsError(Exception):
    """A Sheets call failed; ``status`` is the HTTP status (None when no response came back)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SheetsCredentialsError(SheetsError):
    """The service-account JSON is not usable (not JSON, a field missing, the key unreadable)."""


class SheetsGrantRevoked(SheetsError):
    """The token endpoint refused the service account (`invalid_grant`): key revoked or deleted, account
    gone. Retrying will not help; the link must be marked invalid and its owner told."""


class SheetsPermissionDenied(SheetsError):
    """403: the spreadsheet is not shared with the service account (or the scope is missing)."""


class SheetsNotFound(SheetsError):
    """404: no such spreadsheet."""


class SheetsUnavailable(SheetsError):
    """429, 5xx or a network failure that outlasted the retries."""
