"""A Google stand-in: the OAuth token endpoint for service accounts and the Sheets v4 methods the product
uses, keeping every written grid and formatting request so tests can read them back.

Under the sandbox base: `/google/oauth2/token` (`STOCK_TRACKER_SHEETS_TOKEN_URL`), `/google/sheets`
(`STOCK_TRACKER_SHEETS_API_BASE`), and the control API under `/control/google/…`.
"""

from app.sandbox.sheets import _api, _control, _oauth
from app.sandbox.sheets._state import GoogleState

ROUTES = [*_oauth.ROUTES, *_api.ROUTES, *_control.ROUTES]

__all__ = ["ROUTES", "GoogleState"]
