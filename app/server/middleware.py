"""Per-request context (request id, log binding), the access log, the HTTP duration metric, security headers,
415 and the JSON body check (``bodies.py``)."""

from __future__ import annotations

import re
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.lib.errors import AppError
from app.lib.ids import request_id
from app.observability import logging as logctx
from app.observability.metrics import instruments
from app.server.bodies import buffer_body, check_json_body, replay

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "geolocation=(), camera=(), microphone=()",
}
# JSON answers need nothing from a browser: no scripts, no framing (the docs UI under /schema is exempt).
API_CSP = "default-src 'none'; frame-ancestors 'none'"
_BODY_METHODS = {"POST", "PUT", "PATCH"}
# Endpoints that take a file as multipart/form-data (everything else speaks JSON).
UPLOAD_PATHS = frozenset({"/api/v1/reconciliations"})
# Response headers a browser client on an allowed origin may read.
CORS_EXPOSED_HEADERS = [
    "RateLimit",
    "RateLimit-Policy",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "ETag",
    "X-Cache",
    "X-Request-ID",
]


class UnsupportedMediaTypeError(AppError):
    status_code = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return ""


_SECURITY_RAW = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
_API_DEFAULTS = [(b"cache-control", b"no-store"), (b"content-security-policy", API_CSP.encode())]


# Per-request values other layers leave in ``scope["state"]`` for the before-send hook (one hook instead of a
# ``send`` wrapper per layer: each wrapper costs a call on every message of every response).
RESPONSE_HEADERS_STATE = "response_headers"  # extra headers for the response (the rate limiter's)
STATUS_STATE = "response_status"  # the status sent, for the duration metric
BYTES_STATE = "response_bytes"  # body bytes sent, for the access log
STARTED_STATE = "request_started"  # set by the middleware: it writes the access line, not the hook
# Probes every few seconds would drown the access log: they log at DEBUG.
_QUIET_PATHS = ("/health/", "/metrics")


def _access_log(scope: Scope, state: dict[str, Any], status: int, duration: float | None) -> None:
    """One line per request: `http.request` with request id, tenant, route template, status, duration, bytes."""
    path = scope.get("path", "")
    route: Any = scope.get("path_template") or "unmatched"
    emit = logctx.access.debug if path.startswith(_QUIET_PATHS) else logctx.access.info
    emit(
        "http.request",
        request_id=state.get("request_id"),
        tenant_id=state.get("tenant_id"),
        method=scope.get("method", "GET"),
        route=route,
        status=status,
        duration_ms=round(duration * 1000, 2) if duration is not None else None,
        bytes=state.get(BYTES_STATE, 0),
    )


async def add_response_headers(message: Message, scope: Scope) -> None:
    """App-level before-send hook: applies to every response, error pages and unmatched routes included."""
    if message["type"] == "http.response.body":
        state = scope.get("state", {})
        state[BYTES_STATE] = state.get(BYTES_STATE, 0) + len(message.get("body", b""))
        if not message.get("more_body") and STARTED_STATE not in state and scope.get("type") == "http":
            # Never routed (an unknown path, a wrong method): no middleware ran, so the line is written here.
            _access_log(scope, state, state.get(STATUS_STATE, 0), None)
        return
    if message["type"] != "http.response.start":
        return
    state = scope.get("state", {})
    state[STATUS_STATE] = message["status"]
    # Raw header tuples, one pass: this runs on every response, including the cached hot path.
    raw = [(bytes(k), bytes(v)) for k, v in message.get("headers") or ()]
    extra = state.get(RESPONSE_HEADERS_STATE)
    if extra:
        raw.extend(extra)
    present = {k.lower() for k, _ in raw}
    request_id = state.get("request_id")
    if request_id:
        if b"x-request-id" in present:
            raw = [(k, v) for k, v in raw if k.lower() != b"x-request-id"]
        raw.append((b"x-request-id", request_id.encode("latin-1")))
    raw.extend(item for item in _SECURITY_RAW if item[0] not in present)
    if scope.get("path", "").startswith("/api/"):
        raw.extend(item for item in _API_DEFAULTS if item[0] not in present)
    message["headers"] = raw


def request_id_for(scope: Scope) -> str:
    """The client's ``X-Request-ID`` when it is a sane id (8–128 of ``A-Za-z0-9._-``), else a new one."""
    incoming = _header(scope, b"x-request-id")
    return incoming if _REQUEST_ID.match(incoming) else request_id()


class RequestContextMiddleware(ASGIMiddleware):
    """Runs around every routed HTTP request (unmatched routes are answered by the error handlers)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        request_id = request_id_for(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        logctx.clear()
        # The live state: authentication adds the tenant to it, and every later log line carries it.
        logctx.bind(request_id=request_id, **{logctx.REQUEST_STATE: state})
        started = state[STARTED_STATE] = time.perf_counter()
        status = 0
        try:
            method = scope.get("method", "GET")
            if method in _BODY_METHODS and not scope["path"].startswith("/sandbox"):
                ctype = _header(scope, b"content-type").split(";")[0].strip().lower()
                has_body = _header(scope, b"content-length") not in ("", "0") or bool(
                    _header(scope, b"transfer-encoding")
                )
                if scope["path"].rstrip("/") in UPLOAD_PATHS:  # a file upload takes multipart only
                    upload = True
                    if has_body and ctype != "multipart/form-data":
                        raise UnsupportedMediaTypeError("Send the file as `multipart/form-data` (field `file`).")
                else:
                    upload = False
                    if has_body and not (ctype == "application/json" or ctype.endswith("+json")):
                        raise UnsupportedMediaTypeError("Send the request body as `application/json`.")
                if has_body and not upload:  # an upload's parts are read and bounded by its own handler
                    receive = await self._checked_json(scope, receive)
            await next_app(scope, receive, send)
            status = scope["state"].get(STATUS_STATE, 500)
        except Exception as exc:
            status = getattr(exc, "status_code", 500)
            raise
        finally:
            duration = time.perf_counter() - started
            route: Any = scope.get("path_template") or "unmatched"
            instruments().http_duration.record(duration, route, str(scope.get("method", "GET")), status)
            tenant = state.get("tenant_id")
            if tenant:
                logctx.bind(tenant_id=tenant)
            _access_log(scope, state, status, duration)

    @staticmethod
    async def _checked_json(scope: Scope, receive: Receive) -> Receive:
        """Read the body once and refuse what is not acceptable JSON, before authentication (bodies.py)."""
        max_bytes = scope["app"].state.settings.request_max_body_bytes
        messages, body = await buffer_body(receive, max_bytes)
        if body is not None:  # None: over the size limit, answered 413 by the framework
            check_json_body(body)
        return replay(messages, receive)
