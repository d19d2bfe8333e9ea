"""Realistic examples for the OpenAPI document: what the server really answers (a test validates each one
against its schema, so an example cannot drift from the struct it illustrates)."""

from __future__ import annotations

from typing import Any

_REQ = "01a2448e6b1c7d2f9a3e5b7c9d1f3a5b"
_TENANT = "01a2447d-9aaa-73e6-9a89-6f6053629215"
_CONN = "01a2447d-9b10-7c4e-8a2f-3d5e7f9a1b2c"
_RUN = "01a2447d-d54c-72f4-b53b-0502b35b27f8"
_PRODUCT = "01a2447e-0c3a-7f21-9d4b-5e6f7a8b9c0d"


def _problem(status: int, code: str, title: str, detail: str | None, instance: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": f"https://stock-tracker.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "code": code,
    }
    if detail is not None:
        out["detail"] = detail
    out |= {"instance": instance, "request_id": _REQ, **extra}
    return out


PROBLEM_EXAMPLES: dict[int, dict[str, Any]] = {
    400: _problem(
        400, "malformed_json", "Malformed JSON", "The request body is not valid JSON.", "/api/v1/connections"
    ),
    401: _problem(401, "unauthorized", "Unauthorized", "The access token is invalid or expired.", "/api/v1/products"),
    403: _problem(403, "forbidden", "Forbidden", "Your role is read-only in this organization.", "/api/v1/connections"),
    404: _problem(404, "not_found", "Not found", "No such resource.", f"/api/v1/products/{_PRODUCT}"),
    409: _problem(409, "conflict", "Conflict", "A member with this email already exists.", "/api/v1/members"),
    413: _problem(
        413, "payload_too_large", "Payload too large", "The body exceeds 1048576 bytes.", "/api/v1/connections"
    ),
    415: _problem(
        415,
        "unsupported_media_type",
        "Unsupported media type",
        "Send the request body as `application/json`.",
        "/api/v1/connections",
    ),
    422: _problem(
        422,
        "validation_error",
        "Validation failed",
        "The request does not match the schema; see `errors`.",
        "/api/v1/products",
        errors=[{"field": "limit", "message": "Expected `int` <= 200", "source": "query"}],
    ),
    429: _problem(
        429, "quota_exceeded", "Too many requests", "Rate limit exceeded; retry after 3 s.", "/api/v1/products"
    ),
    500: _problem(500, "internal_error", "Internal server error", None, "/api/v1/products"),
    503: _problem(
        503,
        "database_unavailable",
        "Service unavailable",
        "The database cannot be reached right now; retry the request.",
        "/api/v1/products",
    ),
}


def problem_example(status: int) -> dict[str, Any]:
    return PROBLEM_EXAMPLES.get(status) or _problem(status, "http_error", "HTTP error", None, "/api/v1/products")


# One realistic value per main resource (component name → examples).
SCHEMA_EXAMPLES: dict[str, list[Any]] = {
    "FieldError": [{"field": "email", "message": "Expected `str` of length <= 320", "source": "body"}],
    "RegistrationCreate": [
        {"email": "anna@seller.example", "password": "correct horse battery staple", "organization_name": "Anna's Shop"}
    ],
    "SessionCreate": [{"email": "anna@seller.example", "password": "correct horse battery staple"}],
    "TokenPair": [
        {
            "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMWEyIn0.3q2-7w",
            "refresh_token": "rt_01a2447d9aaa73e69a896f6053629215.Xk2lq9Vw3yQ8sE1aR5tN0uJ7",
            "expires_in": 900,
            "token_type": "Bearer",
        }
    ],
    "WildberriesConnectionCreate": [
        {"marketplace": "wildberries", "name": "Main WB cabinet", "credentials": {"token": "eyJhbGciOiJFUzI1NiJ9..."}}
    ],
    "Connection": [
        {
            "id": _CONN,
            "marketplace": "wildberries",
            "name": "Main WB cabinet",
            "status": "active",
            "status_reason": None,
            "token": None,
            "last_checked_at": "2026-12-05T04:30:12Z",
            "last_sync_at": "2026-12-05T04:31:40Z",
            "last_success_at": "2026-12-05T04:31:40Z",
            "last_sync_status": "succeeded",
            "last_attempt_at": "2026-12-05T04:31:03Z",
            "last_outcome": "succeeded",
            "created_at": "2026-12-01T09:12:00Z",
        }
    ],
    "SyncRunAccepted": [{"id": _RUN, "status": "queued"}],
    "SyncRun": [
        {
            "id": _RUN,
            "connection_id": _CONN,
            "trigger": "manual",
            "status": "succeeded",
            "created_at": "2026-12-05T04:31:02Z",
            "started_at": "2026-12-05T04:31:03Z",
            "finished_at": "2026-12-05T04:31:40Z",
            "duration_seconds": 37.2,
            "attempts": 1,
            "counts": {"products": 412, "variants": 1130, "stock_rows": 5210, "changes": 318, "calls": 19},
            "stages": {},
            "error_code": None,
            "error": None,
            "resume_at": None,
            "status_reason": None,
            "waited_seconds": 0.0,
        }
    ],
    "Product": [
        {
            "id": _PRODUCT,
            "connection_id": _CONN,
            "marketplace": "wildberries",
            "external_id": "146875234",
            "vendor_code": "TSHIRT-OVR-BLK",
            "title": "Футболка оверсайз хлопок",
            "brand": "Nordwear",
            "subject": "Футболки",
            "photo_url": "https://basket-10.wbbasket.ru/vol1468/part146875/146875234/images/c246x328/1.webp",
            "total_quantity": 184,
            "in_way_to_client": 12,
            "in_way_from_client": 3,
            "stock_status": "in_stock",
            "warehouses": 6,
        }
    ],
}
