"""Domain errors: each carries an HTTP status and a stable machine ``code`` rendered as problem+json."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class FieldError(msgspec.Struct):
    """One invalid input: which field, what is wrong, and where it came from (body, query, path, header)."""

    field: str
    message: str
    source: str = "body"


class PlanLimit(msgspec.Struct, omit_defaults=True):
    """Which limit of the organization's plan a request hit, and the way to more (problem members
    ``plan_limit`` of the `plan-limit` and `sync-interval` problems)."""

    limit: str  # products | connections | webhook_endpoints | members | api_keys | sync_interval
    plan: str
    allowed: int  # the plan's limit (sync_interval: minutes between manual syncs)
    upgrade_plans: list[str]  # plans that allow more (empty: none does)
    current: int | None = None
    upgrade: str | None = None  # the request that gets more, e.g. "POST /api/v1/billing/change"
    next_allowed_at: datetime | None = None


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra


class CommitThenRaise(AppError):
    """An error whose request still commits what it wrote before raising.

    The unit-of-work rule (applied in one place, ``app/server/deps.py``): a request's session commits when
    the handler returns and rolls back when anything is raised — except an error of this kind, which is
    the one way a service says "what I wrote is the answer's effect": the session commits, then the error
    is answered. The only user is refresh-token reuse: the token family is revoked and the caller gets 401.
    Mix it in beside the error's own class (``class X(AuthenticationError, CommitThenRaise)``).
    """


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


class BadGatewayError(AppError):
    """An outside service (``upstream``: "telegram", "wildberries", …) answered with something unusable."""

    status_code = 502
    code = "bad_upstream_response"
    title = "Bad answer from an upstream service"

    def __init__(self, upstream: str, detail: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail, headers=headers, upstream=upstream)
        self.upstream = upstream
