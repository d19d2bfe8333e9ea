"""Schemathesis runs every operation of /schema/openapi.json against the running API (uvicorn on loopback),
authenticated as a seeded tenant (through the document's bearer scheme, so schemathesis knows when it
leaves the credentials out on purpose), with its default checks, on valid and on invalid data: zero failures.
Generated text never holds a NUL character: PostgreSQL cannot store one, and a body with one is refused with a
422 ``unstorable_text`` problem, which test_bad_input.py checks on its own.
Every operation is also run anonymously (no credentials at all), on valid and invalid data: whatever it is
sent, nothing answers 5xx or outside its declared schema (protected operations answer their 401 problem).

Operations are listed at collection time from the app's own OpenAPI document (no server needed), one test
per operation and generation mode; the schema the cases come from is the one the running server serves.
(schemathesis' ``from_fixture`` pytest integration does not run under pytest 9, hence plain ``@given``.)

One deliberate narrowing: valid-data cases never invent a ``cursor``. A cursor is opaque and only valid if
the server issued it, which no schema can say; invented ones are refused with 422 (a client error), and the
invalid-data cases still send them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.config._auth import AuthConfig
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.config import Settings
from app.server.auth import PUBLIC_PATHS
from tests.contract.support import seed_tenant, serve_api

MAX_EXAMPLES = 10
_METHODS = ("get", "post", "put", "patch", "delete")


def _operations() -> list[tuple[str, str, GenerationMode]]:
    """Every (method, path, mode); invalid data only where there is something to get wrong."""
    return [(m, p, mode) for m, p, mode, _ in _documented()]


def _documented() -> list[tuple[str, str, GenerationMode, bool]]:
    """Every (method, path, mode, public) of the document."""
    from app.server.app import create_app

    offline = Settings(env="test", jwt_secret="x" * 40, encryption_keys=Fernet.generate_key().decode())
    doc = create_app(offline).openapi_schema.to_schema()
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in _METHODS:
                continue
            public = any(re.search(p, path) for p in PUBLIC_PATHS)
            out.append((method.upper(), path, GenerationMode.POSITIVE, public))
            if op.get("parameters") or op.get("requestBody") or not public:
                out.append((method.upper(), path, GenerationMode.NEGATIVE, public))
    return out


OPERATIONS = _operations()
ANONYMOUS = _documented()

# Schema-valid requests other areas still refuse (each needs its owner's fix; strict, so a fix turns the
# xfail into a failure that says "remove me"). Keyed by (method, path, mode).
# Operations whose schema-valid input is judged by someone else: a marketplace decides whether credentials
# are real. There, instead of "valid input is accepted", the check is "accepted, or refused by the
# marketplace with 422 invalid_credentials" (any other 4xx/5xx still fails).
MARKETPLACE_JUDGED = {("POST", "/api/v1/connections"), ("PUT", "/api/v1/connections/{connection_id}/credentials")}
# Likewise a well-formed webhook URL is refused when it resolves inside (SSRF guard): 422 unsafe_webhook_url.
NETWORK_JUDGED = {("POST", "/api/v1/webhook-endpoints"), ("PATCH", "/api/v1/webhook-endpoints/{endpoint_id}")}

# And a well-formed request whose content only the server can judge: a file that is not the cabinet's export,
# a key file that is not a usable service account, a date range that ends before it starts.
CONTENT_JUDGED = {
    ("POST", "/api/v1/reconciliations"): ("invalid_cabinet_file", "validation_error", "payload_too_large"),
    # The service-account key is a free-form JSON object whose content Google judges; like every body, an
    # integer in it past 64 bits is refused (number_out_of_range), which no schema of a free-form object says.
    ("POST", "/api/v1/reports/sheets"): ("invalid_service_account", "number_out_of_range"),
    ("PATCH", "/api/v1/reports/sheets/{sheet_link_id}"): ("invalid_service_account", "number_out_of_range"),
    ("GET", "/api/v1/reports/stock-by-day"): ("validation_error",),
}

KNOWN_GAPS: dict[tuple[str, str, GenerationMode], str] = {}


def _param(method: str, path: str, mode: GenerationMode) -> Any:
    reason = KNOWN_GAPS.get((method, path, mode))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(method, path, mode, marks=marks, id=f"{method} {path} {mode}")


def _without_invented_cursor(case: Any) -> Any:
    if case.query and "cursor" in case.query:
        case.query = {k: v for k, v in case.query.items() if k != "cursor"}
    return case


@pytest.fixture(scope="module")
def served(settings) -> Iterator[str]:
    with serve_api(settings) as url:
        yield url


@pytest.fixture(scope="module")
async def seeded(served: str, settings, marketplace_sandbox: str) -> Any:
    async with httpx.AsyncClient(base_url=served, timeout=60) as http:
        tenant = await seed_tenant(http, settings, marketplace_sandbox)
    yield tenant
    tenant["seller"].delete()


@pytest.fixture(scope="module")
def api_schema(served: str, seeded: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_url(f"{served}/schema/openapi.json")
    token = seeded["headers"]["Authorization"].removeprefix("Bearer ")
    schema.config.auth = AuthConfig(openapi={"BearerToken": {"bearer": token}})
    schema.config.generation.update(allow_x00=False)  # NUL in text: its own test (test_bad_input.py)
    return schema


@pytest.fixture(scope="module")
def anonymous_schema(served: str, seeded: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_url(f"{served}/schema/openapi.json")
    schema.config.generation.update(allow_x00=False)  # NUL in text: its own test (test_bad_input.py)
    return schema


def test_every_operation_is_exercised(api_schema: Any) -> None:
    served_ops = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert served_ops == {(m, p) for m, p, _ in OPERATIONS}


@pytest.mark.parametrize(("method", "path", "mode"), [_param(*op) for op in OPERATIONS])
def test_operation_conforms(api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    operation = api_schema[path][method]
    strategy = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE:
        strategy = strategy.map(_without_invented_cursor)

    @given(case=strategy)
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        judged = {
            **dict.fromkeys(MARKETPLACE_JUDGED, ("invalid_credentials",)),
            **dict.fromkeys(NETWORK_JUDGED, ("unsafe_webhook_url",)),
            **CONTENT_JUDGED,
        }
        if mode is GenerationMode.POSITIVE and (method, path) in judged:
            response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
            assert response.status_code < 300 or (
                response.status_code in (404, 413, 422)
                and response.json()["code"] in (*judged[(method, path)], "not_found")
            ), response.text
            return
        case.call_and_validate()

    run()


@pytest.mark.parametrize(
    ("method", "path", "mode", "public"),
    [pytest.param(*op, id=f"anonymous {op[0]} {op[1]} {op[2]}") for op in ANONYMOUS],
)
def test_operation_conforms_anonymously(
    anonymous_schema: Any, method: str, path: str, mode: GenerationMode, public: bool
) -> None:
    operation = anonymous_schema[path][method]
    strategy = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE:
        strategy = strategy.map(_without_invented_cursor)

    @given(case=strategy)
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        # Valid data without credentials is refused by every protected operation: that is the point.
        excluded = [] if public and mode is GenerationMode.POSITIVE else [positive_data_acceptance]
        response = case.call_and_validate(excluded_checks=excluded)
        assert response.status_code < 500, response.text
        if not public:
            assert response.status_code in (400, 401, 404, 405, 413, 415, 422), response.text

    run()
