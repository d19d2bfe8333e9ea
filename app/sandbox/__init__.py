"""The sandbox marketplace: Wildberries and Ozon seller APIs simulated in memory, plus a control API.

Mount `create_sandbox_app()` at `/sandbox` or serve `create_standalone_sandbox_app()`; both give
`/sandbox/control/…`, `/sandbox/wb/…` (every WB host under one base), `/sandbox/ozon/…` and a Google
stand-in (`/sandbox/google/oauth2/token`, `/sandbox/google/sheets/v4/…`) for the Sheets push.
"""

from app.sandbox._app import create_sandbox_app, create_standalone_sandbox_app

__all__ = ["create_sandbox_app", "create_standalone_sandbox_app"]
