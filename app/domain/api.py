"""Edge helpers every controller shares: the problem schema, declared error responses, guards."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from app.lib.errors import AuthenticationError, FieldError, PermissionDeniedError, PlanLimit
from app.lib.tokens import Principal

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    code: str
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None
    plan_limit: PlanLimit | None = None
    # For a 502: the outside service that answered badly ("telegram", "wildberries", …).
    upstream: str | None = None


_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Missing or invalid credentials",
    402: "Payment required: the organization is read-only until it subscribes",
    403: "Not allowed for this role or key, or over the plan's limit (`plan_limit`)",
    404: "Not found (including another organization's ids)",
    409: "Conflicts with the current state",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Validation failed; `errors` lists the fields",
    429: "Rate limited; see Retry-After",
    500: "Internal error (details are logged, never returned)",
    502: "An outside service answered badly; `upstream` names it",
    503: "A dependency is unavailable",
}


def errors_for(*statuses: int, api: bool = True) -> dict[int, ResponseSpec]:
    """Declare problem+json responses for an operation (every API one may also answer 400, 429 and 500)."""
    codes = sorted({*statuses, 500, *((400, 429) if api else ())})
    return {
        code: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS.get(code, "Error"),
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,  # realistic ones are set in app/server/openapi
        )
        for code in codes
    }


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise AuthenticationError()
    return user


def write_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Members (and read-only API keys) can read but not change anything."""
    if not principal_of(connection).can_write:
        raise PermissionDeniedError("Your role is read-only in this organization.")


def owner_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Money matters: only an owner (a signed-in person, never an API key)."""
    principal = principal_of(connection)
    if principal.kind != "user" or principal.role != "owner":
        raise PermissionDeniedError("Only an owner of the organization can manage its subscription.")


def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if not principal_of(connection).is_admin:
        raise PermissionDeniedError("Only the organization's owner or an admin can do this.")
