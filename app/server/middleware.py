"""Per-request context (request id, log binding), the HTTP duration metric, security headers, 415."""

from __future__ import annotations

import re
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.lib.errors import AppError
from app.lib.ids import uuid7
from app.observability import logging as logctx
from app.observability.metrics import instruments

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


async def add_response_headers(message: Message, scope: Scope) -> None:
    """App-level before-send hook: applies to every response, error pages and unmatched routes included."""
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


class RequestContextMiddleware(ASGIMiddleware):
    """Runs around every routed HTTP request (unmatched routes are answered by the error handlers)."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid7().hex
        scope.setdefault("state", {})["request_id"] = request_id
        logctx.clear()
        logctx.bind(request_id=request_id)
        started = time.perf_counter()
        status = 0
        try:
            method = scope.get("method", "GET")
            if method in _BODY_METHODS and scope["path"].startswith("/api/"):
                ctype = _header(scope, b"content-type").split(";")[0].strip().lower()
                has_body = _header(scope, b"content-length") not in ("", "0") or bool(
                    _header(scope, b"transfer-encoding")
                )
                upload = ctype == "multipart/form-data" and scope["path"].rstrip("/") in UPLOAD_PATHS
                if has_body and not (ctype == "application/json" or ctype.endswith("+json") or upload):
                    raise UnsupportedMediaTypeError("Send the request body as `application/json`.")
            await next_app(scope, receive, send)
            status = scope["state"].get(STATUS_STATE, 500)
        except Exception as exc:
            status = getattr(exc, "status_code", 500)
            raise
        finally:
            route: Any = scope.get("path_template") or "unmatched"
            instruments().http_duration.record(
                time.perf_counter() - started,
                {
                    "http.route": route,
                    "http.request.method": str(scope.get("method", "GET")),
                    "http.response.status_code": status,
                },
            )
            tenant = scope.get("state", {}).get("tenant_id")
            if tenant:
                logctx.bind(tenant_id=tenant)
