"""One renderer for every error: RFC 9457 problem documents with a stable ``code``."""

from __future__ import annotations

import re
from typing import Any

import httpx
import msgspec
import structlog
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    ClientException,
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from app.domain.api import PROBLEM_MEDIA_TYPE, Problem
from app.integrations.marketplace import MarketplaceError
from app.lib.errors import AppError, BadGatewayError, FieldError, PlanLimit
from app.observability.metrics import instruments
from app.server.middleware import request_id_for

log = structlog.get_logger(__name__)


_STATUS_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    402: ("payment_required", "Payment required"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    422: ("validation_error", "Validation failed"),
    429: ("quota_exceeded", "Too many requests"),
    500: ("internal_error", "Internal server error"),
    502: ("bad_upstream_response", "Bad answer from an upstream service"),
    503: ("service_unavailable", "Service unavailable"),
}
_FIELD_IN_MESSAGE = re.compile(r"field `([^`]+)`")
_PATH_IN_MESSAGE = re.compile(r"at `\$\.([^`]+)`")


def problem_response(
    request: Request[Any, Any, Any] | None,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    plan_limit: PlanLimit | None = None,
    upstream: str | None = None,
) -> Response[Problem]:
    request_id = None
    instance = None
    if request is not None:
        state = request.scope.setdefault("state", {})
        # Unmatched routes never pass the request-context middleware: give them an id here.
        request_id = state.setdefault("request_id", request_id_for(request.scope))
        instance = request.url.path
    instruments().errors.add(1, {"code": code})
    body = Problem(
        type=f"https://stock-tracker.dev/problems/{code.replace('_', '-')}",
        title=title,
        status=status,
        code=code,
        detail=detail,
        instance=instance,
        request_id=request_id,
        errors=errors,
        plan_limit=plan_limit,
        upstream=upstream,
    )
    out_headers = dict(headers or {})
    if request_id:
        out_headers["X-Request-ID"] = request_id
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=out_headers)


def _validation_errors(extra: Any) -> list[FieldError]:
    out: list[FieldError] = []
    for item in extra if isinstance(extra, list) else []:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "invalid value"))
        key = str(item.get("key") or "")
        match = _FIELD_IN_MESSAGE.search(message) or _PATH_IN_MESSAGE.search(message)
        if key in ("", "data") and match:
            key = match.group(1)
        out.append(FieldError(field=key or "body", message=message, source=str(item.get("source") or "body")))
    return out


def _is_decode_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, msgspec.DecodeError) or "JSON is malformed" in str(getattr(seen, "detail", "")):
            return True
        seen = seen.__cause__ or seen.__context__
    detail = str(getattr(exc, "detail", ""))
    return "truncated" in detail or "malformed" in detail


def app_error_handler(request: Request[Any, Any, Any], exc: AppError) -> Response[Problem]:
    return problem_response(
        request,
        exc.status_code,
        exc.code,
        exc.title,
        exc.detail,
        errors=exc.extra.get("errors"),
        headers=exc.headers,
        plan_limit=exc.extra.get("plan_limit"),
        upstream=exc.extra.get("upstream"),
    )


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    code, title = _STATUS_CODES.get(status, ("http_error", "HTTP error"))
    detail: str | None = exc.detail
    errors = None
    if isinstance(exc, ValidationException):
        status, (code, title) = 422, _STATUS_CODES[422]
        errors = _validation_errors(exc.extra)
        detail = "The request does not match the schema; see `errors`."
    elif isinstance(exc, ClientException) and status == 400 and _is_decode_error(exc):
        code, title, detail = "malformed_json", "Malformed JSON", "The request body is not valid JSON."
    elif isinstance(exc, NotFoundException):
        detail = "No such resource."
    elif isinstance(exc, MethodNotAllowedException | NotAuthorizedException | PermissionDeniedException):
        detail = exc.detail
    if status >= 500:
        detail = None
    return problem_response(request, status, code, title, detail, errors=errors, headers=exc.headers)


# SQLSTATEs PostgreSQL raises for text it cannot store (a NUL character, an unpaired surrogate): the input
# is at fault, not the server, and the transaction has been rolled back, so nothing is half-written.
_UNSTORABLE_TEXT = {"22021", "22P05"}


def _unstorable_text(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "sqlstate", None) in _UNSTORABLE_TEXT:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


# SQLSTATEs of a server that cannot take the request now: class 08 (connection exception), and an
# administrator / crash shutdown or a server still starting up (57P01-57P03).
_SERVER_GONE = {"57P01", "57P02", "57P03"}


def _database_dropped(exc: BaseException) -> bool:
    """The database cannot be reached (a restart): a pooled connection the server had closed (SQLAlchemy
    has invalidated the pool, so a retry gets a fresh connection; pre-ping is off by default,
    docs/api-platform.md), a server shutting down or starting up, or no server listening at all (asyncpg's
    connect raises the socket's own OSError, untranslated)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    seen: BaseException | None = exc
    while seen is not None:
        state = getattr(seen, "sqlstate", None) or ""
        if state.startswith("08") or state in _SERVER_GONE:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return isinstance(exc, OSError) and _raised_by_database_driver(exc)


def _raised_by_database_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("asyncpg."):
            return True
        tb = tb.tb_next
    return False


def _upstream_of(exc: BaseException) -> str | None:
    """The outside service behind an error no area translated (a marketplace, any HTTP call), if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, MarketplaceError):
            return seen.marketplace
        if isinstance(seen, httpx.HTTPError):
            try:
                return seen.request.url.host or "upstream"
            except RuntimeError:  # no request attached
                return "upstream"
        seen = seen.__cause__ or seen.__context__
    return None


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Problem]:
    upstream = _upstream_of(exc)
    if upstream is not None:
        # Whatever an area did not translate, an outside service failing is a 502 naming it, never a 500.
        log.warning("http.upstream_error", path=request.url.path, upstream=upstream, error=type(exc).__name__)
        return problem_response(
            request,
            502,
            BadGatewayError.code,
            BadGatewayError.title,
            f"The request needed {upstream}, which did not answer usably.",
            upstream=upstream,
        )
    if isinstance(exc, PoolTimeoutError):
        # Every pooled connection is busy: the database is saturated, not the request at fault.
        log.warning("http.database_pool_exhausted", path=request.url.path)
        _, title = _STATUS_CODES[503]
        return problem_response(
            request, 503, "database_busy", title, "The service is busy; retry shortly.", headers={"Retry-After": "1"}
        )
    if _database_dropped(exc):
        log.warning("http.database_connection_dropped", path=request.url.path)
        _, title = _STATUS_CODES[503]
        return problem_response(
            request,
            503,
            "database_unavailable",
            title,
            "The database cannot be reached right now; retry the request.",
            headers={"Retry-After": "1"},
        )
    if _unstorable_text(exc):
        return problem_response(
            request,
            422,
            "unstorable_text",
            "Validation failed",
            "The request contains a character that cannot be stored (for example a NUL character).",
        )
    # Never leak internals: the log (with the request id) has the traceback, the response has neither.
    log.error(
        "http.unhandled_error",
        path=request.url.path,
        request_id=request.scope.get("state", {}).get("request_id"),
        exc_info=exc,
    )
    code, title = _STATUS_CODES[500]
    return problem_response(request, HTTP_500_INTERNAL_SERVER_ERROR, code, title, None)


EXCEPTION_HANDLERS: dict[Any, Any] = {
    AppError: app_error_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}

__all__ = [
    "EXCEPTION_HANDLERS",
    "PROBLEM_MEDIA_TYPE",
    "FieldError",
    "MediaType",
    "Problem",
    "problem_response",
]
