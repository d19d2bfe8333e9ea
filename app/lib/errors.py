"""Domain errors: each carries an HTTP status and a stable machine ``code`` rendered as problem+json."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra


class NotFoundError(AppError):
    status_code = 404
    code = "not_found"
    title = "Not found"


class ConflictError(AppError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class AuthenticationError(AppError):
    status_code = 401
    code = "unauthorized"
    title = "Unauthorized"


class PermissionDeniedError(AppError):
    status_code = 403
    code = "forbidden"
    title = "Forbidden"


class ValidationError(AppError):
    status_code = 422
    code = "validation_error"
    title = "Validation failed"


class RateLimitedError(AppError):
    status_code = 429
    code = "quota_exceeded"
    title = "Too many requests"


class ServiceUnavailableError(AppError):
    status_code = 503
    code = "service_unavailable"
    title = "Service unavailable"
