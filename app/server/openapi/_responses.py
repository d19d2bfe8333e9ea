"""Responses and headers the server really sends, declared where they occur, with realistic examples.

* ``304 Not Modified`` and ``ETag`` on the cached reads (routes marked ``opt={"cache": …}``), which take
  ``If-None-Match``.
* ``503`` (``database_unavailable``, with ``Retry-After``) on every ``/api/`` operation: any of them can meet
  a database connection the server just dropped.
* ``RateLimit`` / ``RateLimit-Policy`` / ``X-RateLimit-*`` on the answers of authenticated operations (the
  per-caller limiter runs on each), ``Retry-After`` on every ``429``.
* Examples: Litestar generates random strings for the problem schema; those are replaced by what the
  server really answers, and the main resources get one realistic example each (``_examples.py``).
"""

from __future__ import annotations

import enum
import re
from typing import Any

from litestar import Litestar
from litestar.enums import ParamType
from litestar.openapi.spec import (
    Components,
    Example,
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
)
from litestar.openapi.spec import Schema as SchemaObject

from app.domain.api import PROBLEM_MEDIA_TYPE
from app.server.openapi._constraints import operations
from app.server.openapi._examples import PROBLEM_EXAMPLES, SCHEMA_EXAMPLES, problem_example

_INT = SchemaObject(type=OpenAPIType.INTEGER)
_STR = SchemaObject(type=OpenAPIType.STRING)
RATE_LIMIT_HEADERS = {
    "RateLimit": (
        _STR,
        "What is left of each window (draft-ietf-httpapi-ratelimit-headers): remaining `r`, seconds to reset `t`.",
        '"burst";r=9;t=1, "minute";r=117;t=42',
    ),
    "RateLimit-Policy": (
        _STR,
        "Your plan's windows: quota `q` per `w` seconds (API keys also see the monthly quota).",
        '"burst";q=10;w=1, "minute";q=120;w=60, "month";q=10000;w=2592000',
    ),
    "X-RateLimit-Limit": (_INT, "The quota of the window closest to running out.", 120),
    "X-RateLimit-Remaining": (_INT, "What is left of that window.", 117),
    "X-RateLimit-Reset": (_INT, "Seconds until that window frees capacity.", 42),
}
RETRY_AFTER = OpenAPIHeader(schema=_INT, description="Seconds to wait before retrying.", required=True, example=3)
ETAG = OpenAPIHeader(
    schema=_STR,
    description="The representation's tag: send it back as `If-None-Match` to get `304` while nothing changed.",
    example='"9f2c1e5b7a0d4c3e8b6a1f0e2d3c4b5a"',
)
IF_NONE_MATCH = Parameter(
    name="If-None-Match",
    param_in=ParamType.HEADER,
    schema=_STR,
    required=False,
    description="An `ETag` from an earlier answer: `304 Not Modified` (no body) if it is still current.",
    example='"9f2c1e5b7a0d4c3e8b6a1f0e2d3c4b5a"',
)


class _Null(enum.Enum):
    """Litestar drops every ``None`` from the document (``_normalize_value``), nulls inside an example too;
    an enum member passes that filter and is then written as its value, ``null``."""

    NULL = None


def _keep_nulls(value: Any) -> Any:
    if value is None:
        return _Null.NULL
    if isinstance(value, dict):
        return {k: _keep_nulls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keep_nulls(v) for v in value]
    return value


def _header(schema: SchemaObject, description: str, example: Any) -> OpenAPIHeader:
    return OpenAPIHeader(schema=schema, description=description, required=False, example=example)


def _cached_paths(app: Litestar) -> set[tuple[str, str]]:
    """(document path, method) of the routes served through the response cache."""
    out: set[tuple[str, str]] = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if handler.opt.get("cache"):
                path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)
                out.update((path, m.lower()) for m in handler.http_methods)
    return out


def _problem_response(status: int, description: str) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={
            PROBLEM_MEDIA_TYPE: OpenAPIMediaType(
                schema=Reference(ref="#/components/schemas/Problem"),
                examples={"problem": Example(value=problem_example(status))},
            )
        },
    )


def _responses(operation: Operation) -> dict[str, Any]:
    if operation.responses is None:
        operation.responses = {}
    return operation.responses


def _add_headers(response: Any, headers: dict[str, OpenAPIHeader]) -> None:
    if isinstance(response, OpenAPIResponse):
        response.headers = {**(response.headers or {}), **headers}


def _real_problem_examples(responses: dict[str, Any]) -> None:
    for status, response in responses.items():
        if not isinstance(response, OpenAPIResponse) or not response.content:
            continue
        media = response.content.get(PROBLEM_MEDIA_TYPE)
        if media is not None and status.isdigit():
            media.examples = {"problem": Example(value=problem_example(int(status)))}
            media.example = None


def _strip_generated_examples(schema: SchemaObject, seen: set[int]) -> None:
    if id(schema) in seen:
        return
    seen.add(id(schema))
    schema.examples = None
    for child in [*(schema.one_of or []), *(schema.properties or {}).values(), schema.items]:
        if isinstance(child, SchemaObject):
            _strip_generated_examples(child, seen)


def declare_responses(app: Litestar, document: OpenAPI, public_paths: list[str]) -> None:
    public = [re.compile(p) for p in public_paths]
    cached = _cached_paths(app)
    limits = {name: _header(*spec) for name, spec in RATE_LIMIT_HEADERS.items()}
    for path, method, operation in operations(document):
        responses = _responses(operation)
        authenticated = path.startswith("/api/") and not any(p.search(path) for p in public)
        if path.startswith("/api/") and "503" not in responses:
            responses["503"] = _problem_response(503, "A dependency is unavailable (the database); retry")
        for status, response in responses.items():
            if status == "429":
                _add_headers(response, {"Retry-After": RETRY_AFTER, **(limits if authenticated else {})})
            elif status == "503":
                _add_headers(response, {"Retry-After": RETRY_AFTER})
            elif authenticated and status.startswith("2"):
                _add_headers(response, limits)
        if (path, method) in cached:
            for status, response in responses.items():
                if status == "200":
                    _add_headers(response, {"ETag": ETAG})
            responses["304"] = OpenAPIResponse(
                description="Not modified: the `If-None-Match` tag is still current (no body).",
                headers={"ETag": ETAG, **limits},
            )
            operation.parameters = [*(operation.parameters or []), IF_NONE_MATCH]
        _real_problem_examples(responses)
        operation.responses = dict(sorted(responses.items()))
    components = document.components if isinstance(document.components, Components) else None
    schemas = (components.schemas or {}) if components else {}
    seen: set[int] = set()
    for name in ("Problem", "FieldError", "PlanLimit"):
        schema = schemas.get(name)
        if isinstance(schema, SchemaObject):
            _strip_generated_examples(schema, seen)
    for name, examples in SCHEMA_EXAMPLES.items():
        schema = schemas.get(name)
        if isinstance(schema, SchemaObject):
            schema.examples = [_keep_nulls(e) for e in examples]
    schema = schemas.get("Problem")
    if isinstance(schema, SchemaObject):
        schema.examples = [PROBLEM_EXAMPLES[422]]
