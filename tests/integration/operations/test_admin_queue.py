"""The operator's queue view: `GET /api/v1/admin/queue` (operator token only, 404 when none is configured),
its retry and cancel actions, and `stock-tracker queue` — over a real app, a real Redis queue and a real
worker."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from app.lib.redis import arq_client
from app.server.app import create_app
from tests.helpers import register
from tests.integration.operations.support import ROOT, deployment_env
from tests.sync_support import connect, make_seller, run_worker

TOKEN = secrets.token_urlsafe(32)
PATH = "/api/v1/admin/queue"


@pytest.fixture(scope="module")
def op_settings(settings):
    return msgspec.structs.replace(settings, operator_token=TOKEN, queue_name=f"arq:admin:{secrets.token_hex(4)}")


@pytest.fixture(scope="module")
async def op(op_settings) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(app=create_app(op_settings), base_url="http://testserver.local") as c:
        yield c


OPERATOR = {"Authorization": f"Bearer {TOKEN}"}


async def test_without_an_operator_token_the_routes_do_not_exist(client, account):
    for headers in ({}, account["headers"], OPERATOR):
        resp = await client.get(PATH, headers=headers)
        assert resp.status_code == 404, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert (await client.post(f"{PATH}/jobs/x/cancel", headers=headers)).status_code == 404


async def test_only_the_operator_token_opens_it(op):
    owner = await register(op)
    key = await op.post("/api/v1/api-keys", json={"name": "k", "scopes": ["read", "write"]}, headers=owner["headers"])
    for headers in (
        {},
        owner["headers"],  # a tenant's access token
        {"Authorization": f"Bearer {key.json()['key']}"},  # a tenant's API key
        {"Authorization": f"Bearer {TOKEN[:-1]}x"},
        {"Authorization": f"Basic {TOKEN}"},
    ):
        resp = await op.get(PATH, headers=headers)
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.json()["code"] == "unauthorized" and TOKEN not in resp.text
    ok = await op.get(PATH, headers=OPERATOR)
    assert ok.status_code == 200, ok.text
    assert {"queued", "in_progress", "deferred", "oldest_queued_age_seconds", "failed_recent"} <= set(ok.json())
    # Not part of the tenants' API contract.
    assert PATH not in (await op.get("/schema/openapi.json")).json()["paths"]


async def test_queued_and_deferred_jobs_are_listed_and_cancelled(op, op_settings, marketplace_sandbox):
    owner = await register(op)
    seller = make_seller(marketplace_sandbox, products=2, warehouses=1, seed=155)
    redis = arq_client(op_settings.redis_url, op_settings.queue_name)
    try:
        conn = await connect(op, owner["headers"], seller)
        await run_worker(op_settings)  # what signing up and connecting enqueued (audit records)
        rid = f"req-{uuid.uuid4().hex}"
        run = await op.post(
            f"/api/v1/connections/{conn['id']}/syncs", headers={**owner["headers"], "X-Request-ID": rid}
        )
        assert run.status_code == 202, run.text
        later = await redis.enqueue_job(
            "sync.connection", tenant_id=owner["tenant"]["id"], connection_id=conn["id"], _defer_by=3600
        )
        view = (await op.get(PATH, headers=OPERATOR)).json()
        assert view["counts"] == {"queued": 1, "in_progress": 0, "deferred": 1}
        (queued,) = view["queued"]
        assert queued["function"] == "sync.connection" and queued["request_id"] == rid  # from the request
        assert queued["kwargs"]["connection_id"] == conn["id"] and "_request_id" not in queued["kwargs"]
        assert view["oldest_queued_age_seconds"] >= 0 and view["deferred"][0]["job_id"] == later.job_id

        cancelled = await op.post(f"{PATH}/jobs/{queued['job_id']}/cancel", headers=OPERATOR)
        assert cancelled.status_code == 201 and cancelled.json()["outcome"] == "cancelled", cancelled.text
        assert (await op.post(f"{PATH}/jobs/{later.job_id}/cancel", headers=OPERATOR)).json()["outcome"] == "cancelled"
        again = await op.post(f"{PATH}/jobs/{queued['job_id']}/cancel", headers=OPERATOR)
        assert again.status_code == 404 and again.json()["code"] == "job_not_found"
        view = (await op.get(PATH, headers=OPERATOR)).json()
        assert view["counts"] == {"queued": 0, "in_progress": 0, "deferred": 0}
        await run_worker(op_settings)  # nothing left to run: the cancelled sync never happens
        assert (await op.get(f"/api/v1/syncs/{run.json()['id']}", headers=owner["headers"])).json()[
            "status"
        ] == "queued"
    finally:
        await redis.aclose()
        seller.delete()


async def test_a_failed_job_is_listed_with_its_error_and_retried(op, op_settings):
    redis = arq_client(op_settings.redis_url, op_settings.queue_name)
    try:
        # A job whose arguments its function refuses: it fails for real in a real worker.
        job = await redis.enqueue_job(
            "sync.connection", tenant_id="not-a-tenant", connection_id=str(uuid.uuid4()), _request_id="req-failing-1"
        )
        await run_worker(op_settings)
        view = (await op.get(PATH, headers=OPERATOR)).json()
        (failed,) = [f for f in view["failed_recent"] if f["job_id"] == job.job_id]
        assert failed["function"] == "sync.connection" and failed["request_id"] == "req-failing-1"
        assert failed["error"].startswith("ValueError") and failed["job_try"] == 1
        assert failed["retry"] == f"{PATH}/jobs/{job.job_id}/retry"

        retried = await op.post(f"{PATH}/jobs/{job.job_id}/retry", headers=OPERATOR)
        assert retried.status_code == 201 and retried.json() == {"job_id": job.job_id, "outcome": "enqueued"}
        view = (await op.get(PATH, headers=OPERATOR)).json()
        assert [q["job_id"] for q in view["queued"]] == [job.job_id]
        assert view["queued"][0]["request_id"] == "req-failing-1"  # the retry keeps the correlation
        assert job.job_id not in [f["job_id"] for f in view["failed_recent"]]
        conflict = await op.post(f"{PATH}/jobs/{job.job_id}/retry", headers=OPERATOR)
        assert conflict.status_code == 404  # no longer a recent failure
        await run_worker(op_settings)  # fails again, and is listed again
        view = (await op.get(PATH, headers=OPERATOR)).json()
        assert job.job_id in [f["job_id"] for f in view["failed_recent"]]
    finally:
        await redis.aclose()


def test_the_cli_shows_the_same_queue(op_settings):
    env = deployment_env(op_settings)
    out = subprocess.run(
        [sys.executable, "-m", "app", "queue", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    view = json.loads(out.stdout)
    assert view["queue"] == op_settings.queue_name and view["failed_recent"]
    job_id = view["failed_recent"][0]["job_id"]
    text = subprocess.run(
        [sys.executable, "-m", "app", "queue"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert text.returncode == 0 and "recent failures" in text.stdout and job_id in text.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "app", "queue", "cancel", "no-such-job"],
        cwd=ROOT,
        env={**env, "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and "No queued" in missing.stderr


async def test_cancelling_a_running_job_aborts_it(op, op_settings, marketplace_sandbox):
    """A sync stuck on a slow marketplace is aborted by the operator: arq cancels its task, the worker frees
    the slot, and the job is gone from the queue."""
    import asyncio

    from arq.worker import Worker

    from app.worker.settings import build_worker_settings

    owner = await register(op)
    seller = make_seller(marketplace_sandbox, products=2, warehouses=1, seed=159)
    redis = arq_client(op_settings.redis_url, op_settings.queue_name)
    worker = Worker(
        **{
            **build_worker_settings(op_settings, serve_metrics=False),
            "handle_signals": False,
            "poll_delay": 0.05,
            "cron_jobs": [],
        }
    )
    task = asyncio.get_running_loop().create_task(worker.main())
    try:
        conn = await connect(op, owner["headers"], seller)
        seller.faults(latency_ms=30_000)  # every marketplace call now takes 30 s
        run = await op.post(f"/api/v1/connections/{conn['id']}/syncs", headers=owner["headers"])
        assert run.status_code == 202, run.text
        running: list[dict[str, Any]] = []
        for _ in range(200):
            view = (await op.get(PATH, headers=OPERATOR)).json()
            running = [j for j in view["in_progress"] if j["function"] == "sync.connection"]
            if running:
                break
            await asyncio.sleep(0.05)
        assert running, view
        job_id = running[0]["job_id"]
        aborted = await op.post(f"{PATH}/jobs/{job_id}/cancel", headers=OPERATOR)
        assert aborted.status_code == 201 and aborted.json()["outcome"] == "aborting", aborted.text
        for _ in range(200):
            view = (await op.get(PATH, headers=OPERATOR)).json()
            if job_id not in [j["job_id"] for j in view["in_progress"] + view["queued"]]:
                break
            await asyncio.sleep(0.05)
        assert job_id not in [j["job_id"] for j in view["in_progress"] + view["queued"]], view
        assert worker.jobs_failed >= 1  # arq records an abort as a failed (cancelled) job
    finally:
        seller.faults(latency_ms=0)
        await worker.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await redis.aclose()
        seller.delete()
