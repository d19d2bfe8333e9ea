"""One access-log line per request on the API's output (JSON in production), and the request id: a client's
X-Request-ID is kept (or one is made), returned, and carried into the jobs the request enqueued — the
worker's log lines of the sync that request asked for carry it."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import unique_email
from tests.helpers import PASSWORD
from tests.integration.operations.support import Deployment
from tests.sync_support import make_seller


def log_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(item)
    return out


def wait_for(path: Path, match: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in log_lines(path) if match(line)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_access_log_and_request_id_from_request_to_jobs(deployment: Deployment, marketplace_sandbox):
    rid = f"client-{uuid.uuid4().hex}"
    seller = make_seller(marketplace_sandbox, "wildberries", products=3, warehouses=1, seed=153)
    try:
        with httpx.Client(base_url=deployment.api_url, timeout=30) as http:
            reg = http.post(
                "/api/v1/auth/register",
                json={"email": unique_email("access"), "password": PASSWORD, "organization_name": "Access"},
            )
            tenant = reg.json()["tenant"]["id"]
            headers = {"Authorization": f"Bearer {reg.json()['tokens']['access_token']}"}
            conn = http.post(
                "/api/v1/connections",
                json={"marketplace": "wildberries", "name": "Logged", "credentials": seller.credentials},
                headers=headers,
            ).json()
            run = http.post(f"/api/v1/connections/{conn['id']}/syncs", headers={**headers, "X-Request-ID": rid})
            assert run.status_code == 202 and run.headers["x-request-id"] == rid
            made = http.get("/api/v1/me", headers=headers)
            assert len(made.headers["x-request-id"]) == 32 and made.headers["x-request-id"] != rid
            bad = http.get("/api/v1/me", headers={**headers, "X-Request-ID": "bad id with spaces"})
            assert bad.headers["x-request-id"] != "bad id with spaces"  # not an id we log: one is made
            unknown = http.get("/api/v1/no-such-route", headers={"X-Request-ID": f"{rid}-404"})
            assert unknown.status_code == 404 and unknown.headers["x-request-id"] == f"{rid}-404"
            deadline = time.monotonic() + 60
            while http.get(f"/api/v1/syncs/{run.json()['id']}", headers=headers).json()["status"] != "succeeded":
                assert time.monotonic() < deadline
                time.sleep(0.3)
    finally:
        seller.delete()

    api_log = deployment.logs["api"]
    (line,) = wait_for(api_log, lambda x: x.get("event") == "http.request" and x.get("request_id") == rid)
    assert line["method"] == "POST" and line["status"] == 202 and line["tenant_id"] == tenant
    assert line["route"] == "/api/v1/connections/{connection_id}/syncs"  # the template, not the id
    assert line["duration_ms"] > 0 and line["bytes"] > 0 and line["level"] == "info" and "timestamp" in line
    (me,) = wait_for(api_log, lambda x: x.get("request_id") == made.headers["x-request-id"])
    assert me["event"] == "http.request" and me["route"] == "/api/v1/me" and me["status"] == 200
    (miss,) = wait_for(api_log, lambda x: x.get("event") == "http.request" and x.get("request_id") == f"{rid}-404")
    assert miss["route"] == "unmatched" and miss["status"] == 404
    assert not [x for x in log_lines(api_log) if "authorization" in json.dumps(x).lower() and "Bearer" in str(x)]

    # The sync job (and what it enqueued in turn) logged under the client's request id and the tenant.
    worker_lines = wait_for(deployment.logs["worker"], lambda x: x.get("request_id") == rid)
    events = {x["event"] for x in worker_lines}
    assert "sync.run.finished" in events, events
    assert all(x.get("tenant_id") == tenant for x in worker_lines)
