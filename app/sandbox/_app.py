"""App factories and the error handlers that keep every answer in the right host's shape."""

from __future__ import annotations

import logging

from litestar import Litestar, Request, Response, asgi
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.types import Receive, Scope, Send

from app.sandbox import (
    _control,
    _ozon_postings,
    _ozon_products,
    _ozon_stocks,
    _wb_cabinet,
    _wb_content,
    _wb_orders,
    _wb_stocks,
)
from app.sandbox._gate import to_response
from app.sandbox._replies import ozon_error, phrase, problem, wb_path_not_found, wb_problem
from app.sandbox._seller import Sandbox
from app.sandbox.sheets import ROUTES as SHEETS_ROUTES
from app.sandbox.sheets import GoogleState
from app.sandbox.stripe import stripe_mounts

logger = logging.getLogger("app.sandbox")

MAX_BODY = 8 * 1024 * 1024


def _area(request: Request) -> str:
    parts = request.scope["path"].strip("/").split("/")
    return parts[0] if parts else ""


def _http_error(request: Request, exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    area = _area(request)
    if area == "wb":
        if status in (404, 405):
            return to_response(wb_path_not_found())
        return to_response(wb_problem(status, phrase(status).lower(), str(exc.detail), "s2s-api-gateway"))
    if area == "ozon":
        if status in (404, 405):  # Ozon answers an unknown method or path alike
            return to_response(ozon_error(404, "Not Found"))
        return to_response(ozon_error(status, phrase(status)))
    return to_response(problem(status, str(exc.detail)))


def _unexpected(request: Request, exc: Exception) -> Response[bytes]:
    logger.exception("sandbox.unexpected_error", extra={"path": request.scope["path"]})
    if _area(request) == "ozon":
        return to_response(ozon_error(500, "Internal error"))
    return to_response(problem(500, "Unexpected sandbox error"))


def create_sandbox_app(*, rate_limits: bool = True) -> Litestar:
    """The sandbox marketplace with relative routes (`/control/…`, `/wb/…`, `/ozon/…`); fresh state."""
    sandbox = Sandbox(rate_limits=rate_limits)
    google = GoogleState()
    return Litestar(
        route_handlers=[
            *_control.ROUTES,
            *_wb_cabinet.ROUTES,
            *_wb_content.ROUTES,
            *_wb_stocks.ROUTES,
            *_wb_orders.ROUTES,
            *_ozon_products.ROUTES,
            *_ozon_stocks.ROUTES,
            *_ozon_postings.ROUTES,
            *SHEETS_ROUTES,
            *stripe_mounts(),  # the Stripe stand-in: /stripe/v1/… and /control/stripe/…
        ],
        dependencies={
            "sandbox": Provide(lambda: sandbox, use_cache=True, sync_to_thread=False),
            "google": Provide(lambda: google, use_cache=True, sync_to_thread=False),
        },
        exception_handlers={HTTPException: _http_error, Exception: _unexpected},
        request_max_body_size=MAX_BODY,
        openapi_config=None,
        state=State({"sandbox": sandbox}),
    )


def create_standalone_sandbox_app(*, rate_limits: bool = True) -> Litestar:
    """The sandbox alone, mounted under `/sandbox` so its URLs match the development mount."""
    inner = create_sandbox_app(rate_limits=rate_limits)

    @asgi("/sandbox", is_mount=True, copy_scope=True)
    async def sandbox_mount(scope: Scope, receive: Receive, send: Send) -> None:
        await inner(scope, receive, send)

    return Litestar(
        route_handlers=[sandbox_mount], openapi_config=None, state=State({"sandbox": inner.state["sandbox"]})
    )
