"""Response bodies, including every error shape the real hosts use (they differ per WB host and Ozon)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

import msgspec

from app.sandbox._timeutil import utc_z

WbFamily = Literal["content", "analytics", "marketplace", "statistics", "common"]

JSON = "application/json"
PROBLEM = "application/problem+json"

_encoder = msgspec.json.Encoder()

# The auth gateway in front of each WB host names itself in `origin`.
WB_AUTH_ORIGIN: dict[WbFamily, str] = {
    "content": "s2s-api-auth-content",
    "analytics": "s2s-api-auth-seller-analytics",
    "marketplace": "s2s-api-auth-marketplace",
    "statistics": "s2s-api-auth-stat",
    "common": "s2s-api-auth-catalog",
}

# gRPC status codes Ozon puts in `code`, by HTTP status.
OZON_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 429: 8, 500: 13, 501: 12, 503: 14, 504: 4}


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes = b""
    media_type: str = JSON
    headers: dict[str, str] | None = None


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def json_reply(value: Any, status: int = 200) -> Reply:
    return Reply(status, _encoder.encode(value))


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def request_id() -> str:
    return secrets.token_hex(16)


# ---- Wildberries ------------------------------------------------------------------------------------------


def wb_problem(status: int, title: str, detail: str, origin: str, code: str | None = None) -> Reply:
    body = {
        "title": title,
        "detail": detail,
        "code": code or f"{secrets.token_hex(4)}-{secrets.token_hex(6)}-[UK-{secrets.token_urlsafe(9)}]",
        "requestId": request_id(),
        "origin": origin,
        "status": status,
        "statusText": phrase(status),
        "timestamp": utc_z(time.time()),
    }
    return Reply(status, _encoder.encode(body), PROBLEM)


def wb_unauthorized(family: WbFamily, detail: str) -> Reply:
    return wb_problem(401, "unauthorized", detail, WB_AUTH_ORIGIN[family])


def wb_too_many(family: WbFamily, limiter_id: str, retry: int, reset: int, burst: int) -> Reply:
    reply = wb_problem(429, "too many requests", f"limited by {limiter_id}", WB_AUTH_ORIGIN[family])
    reply.headers = {
        "X-Ratelimit-Retry": str(retry),
        "X-Ratelimit-Reset": str(reset),
        "X-Ratelimit-Limit": str(burst),
    }
    return reply


def wb_base_forbidden(family: WbFamily) -> Reply:
    return wb_problem(
        403,
        "forbidden",
        "base token is not allowed",
        WB_AUTH_ORIGIN[family],
        "base token is not allowed for this path",
    )


def wb_path_not_found() -> Reply:
    body = {
        "title": "path not found",
        "detail": "Please consult the https://dev.wildberries.ru/openapi/api-information",
        "status": 404,
        "statusText": "Not Found",
        "timestamp": utc_z(time.time()),
    }
    return Reply(404, _encoder.encode(body), PROBLEM)


def content_error(status: int, text: str) -> Reply:
    body = {"data": None, "error": True, "errorText": text, "additionalErrors": None}
    return Reply(status, _encoder.encode(body))


def marketplace_error(status: int, code: str, message: str) -> Reply:
    return Reply(status, _encoder.encode({"code": code, "message": message, "data": None}))


def analytics_error(status: int, title: str, detail: str) -> Reply:
    body = {"title": title, "detail": detail, "requestId": request_id(), "origin": "analytic-open-api"}
    return Reply(status, _encoder.encode(body))


def statistics_error(errors: list[str] | str, status: int = 400) -> Reply:
    return Reply(status, _encoder.encode({"errors": errors}))


_MARKETPLACE_CODES = {400: "IncorrectRequest", 403: "AccessDenied", 404: "NotFound", 409: "Conflict"}


def wb_fault(family: WbFamily, status: int) -> Reply:
    """An injected failure in the shape the given WB host uses for that status."""
    if status == 401:
        return wb_unauthorized(family, "token problem; token is malformed: simulated failure")
    if status >= 500:  # 5xx come from WB's gateway as problem documents whatever the host
        return wb_problem(status, phrase(status).lower(), "simulated failure", WB_AUTH_ORIGIN[family])
    if family == "content":
        return content_error(status, phrase(status))
    if family == "marketplace":
        return marketplace_error(status, _MARKETPLACE_CODES.get(status, phrase(status).replace(" ", "")), "")
    if family == "analytics":
        return analytics_error(status, phrase(status), "simulated failure")
    if family == "statistics":
        return statistics_error([phrase(status)], status)
    return wb_problem(status, phrase(status).lower(), "simulated failure", WB_AUTH_ORIGIN[family])


# ---- Ozon -------------------------------------------------------------------------------------------------


def ozon_error(status: int, message: str, code: int | None = None) -> Reply:
    body = {"code": OZON_CODES.get(status, 2) if code is None else code, "message": message, "details": []}
    return Reply(status, _encoder.encode(body))


OZON_RATE_LIMITED = "You have reached request rate limit per second"
OZON_INVALID_KEY = "Invalid Api-Key, please check the key and try again"


def ozon_fault(status: int) -> Reply:
    messages = {
        429: OZON_RATE_LIMITED,
        401: "Invalid Api-Key, please check the key and try again",
        404: "Not Found",
    }
    return ozon_error(status, messages.get(status, "Internal error" if status >= 500 else phrase(status)))


# ---- control API ------------------------------------------------------------------------------------------


def problem(status: int, detail: str, *, errors: list[dict[str, str]] | None = None) -> Reply:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": phrase(status),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return Reply(status, _encoder.encode(body), PROBLEM)
