"""With STOCK_TRACKER_SENTRY_DSN set, unhandled errors of the API and the worker reach a Sentry-compatible
ingest endpoint (a local fake speaking the envelope protocol over HTTP) with release, environment, component
and tenant id, and without tokens or passwords. Without a DSN the SDK is never imported."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import msgspec
import pytest
from litestar import get
from litestar.testing import AsyncTestClient

from app.lib.redis import arq_client
from app.observability.errors import flush_error_tracking, shutdown_error_tracking
from app.server.app import create_app
from tests.fakes.sentry import FakeSentry
from tests.helpers import register
from tests.integration.operations.support import ROOT
from tests.sync_support import run_worker

DB_PASSWORD = "hunter2-" + uuid.uuid4().hex
SECRET_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsZWFrIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.fixture
def sentry() -> Iterator[FakeSentry]:
    with FakeSentry().serve() as fake:
        yield fake
    shutdown_error_tracking()


@get("/api/v1/_test/boom", include_in_schema=False, sync_to_thread=False)
def boom() -> None:
    # An unhandled error whose message carries what must never leave: a password in a URL, a token.
    raise RuntimeError(
        f"cannot reach postgresql://stock_tracker_app:{DB_PASSWORD}@db:5432/st with Bearer {SECRET_TOKEN} "
        f"password={DB_PASSWORD}"
    )


async def test_an_unhandled_api_error_is_reported_scrubbed(settings, sentry):
    app = create_app(
        msgspec.structs.replace(settings, sentry_dsn=sentry.dsn, sentry_environment="staging", sentry_release="st@9.9")
    )
    app.register(boom)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as c:
        owner = await register(c)
        resp = await c.get("/api/v1/_test/boom", headers={**owner["headers"], "X-Request-ID": "req-boom-123"})
        assert resp.status_code == 500 and DB_PASSWORD not in resp.text
        ok = await c.get("/api/v1/me", headers=owner["headers"])  # a handled request reports nothing
        assert ok.status_code == 200
        bad = await c.get("/api/v1/products", params={"limit": "x"}, headers=owner["headers"])  # nor a 4xx
        assert bad.status_code == 422
        flush_error_tracking()
    (event,) = sentry.wait_for_events(1)
    assert event["release"] == "st@9.9" and event["environment"] == "staging"
    assert event["tags"]["component"] == "api"
    assert event["tags"]["tenant_id"] == owner["tenant"]["id"]
    assert event["tags"]["request_id"] == "req-boom-123"
    (exc,) = event["exception"]["values"]
    assert exc["type"] == "RuntimeError" and "[Filtered]" in exc["value"]
    raw = sentry.raw()
    assert DB_PASSWORD.encode() not in raw and SECRET_TOKEN.encode() not in raw
    assert owner["tokens"]["access_token"].encode() not in raw  # the caller's token neither


async def test_an_unhandled_job_error_is_reported(settings, sentry):
    worker_settings = msgspec.structs.replace(
        settings, sentry_dsn=sentry.dsn, queue_name=f"arq:sentry:{uuid.uuid4().hex[:8]}"
    )
    redis = arq_client(settings.redis_url, worker_settings.queue_name)
    try:
        tenant = str(uuid.uuid4())
        job = await redis.enqueue_job(
            "audit.record", tenant_id=tenant, unexpected=f"password={DB_PASSWORD}", _request_id="req-job-123"
        )
    finally:
        await redis.aclose()
    await run_worker(worker_settings)  # its shut-down flushes what was reported
    (event,) = sentry.wait_for_events(1)
    assert event["environment"] == "test" and event["release"].startswith("stock-tracker@")
    assert event["tags"]["component"] == "worker" and event["tags"]["function"] == "audit.record"
    assert event["tags"]["job_id"] == job.job_id and event["tags"]["request_id"] == "req-job-123"
    assert event["tags"]["tenant_id"] == tenant
    assert event["exception"]["values"][-1]["type"] == "TypeError"
    assert DB_PASSWORD.encode() not in sentry.raw()
    # Only what we report: no framework integration was set up (they patch Litestar, httpx, logging for good).
    from sentry_sdk.integrations import _installed_integrations

    assert set(_installed_integrations) <= {"dedupe"}


def test_without_a_dsn_the_sdk_is_never_imported(settings):
    script = f"""
import asyncio, sys, msgspec
from app.config import Settings
from app.server.app import create_app
from app.worker.settings import build_worker_settings
from app.observability.errors import init_error_tracking
settings = msgspec.convert({msgspec.to_builtins(settings)!r}, Settings)
create_app(settings)
build_worker_settings(settings, serve_metrics=False)
assert init_error_tracking("", environment="test", component="api") is False
assert "sentry_sdk" not in sys.modules, "sentry_sdk was imported"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
