"""Every metric and label the Grafana panels and the Prometheus rules read (deploy/metrics.json) is served by
the process that must serve it, scraped from the real /metrics of a running API and worker after a demo
sync. A panel whose metric disappears, or a label renamed in code, fails here: no dead panel comes back."""

from __future__ import annotations

import json
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import unique_email
from tests.helpers import PASSWORD
from tests.integration.operations.support import ROOT, Deployment
from tests.sync_support import make_seller

CATALOG = json.loads((ROOT / "deploy" / "metrics.json").read_text())["metrics"]


def scrape(url: str, token: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    resp = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def missing_from(samples: dict[str, list[tuple[dict[str, str], float]]], process: str) -> list[str]:
    problems = []
    for name, spec in CATALOG.items():
        if spec["emitted_by"] != process:
            continue
        series = samples.get(name)
        if not series:
            problems.append(f"{name} is not served ({', '.join(spec['used_by'])})")
            continue
        wanted = set(spec["labels"])
        if not any(wanted <= set(labels) for labels, _ in series):
            have = sorted({k for labels, _ in series for k in labels})
            problems.append(f"{name} lacks labels {sorted(wanted)}: has {have}")
    return problems


def demo_sync(api: str, sandbox: str) -> str:
    seller = make_seller(sandbox, "wildberries", products=6, warehouses=1, seed=151)
    try:
        with httpx.Client(base_url=api, timeout=30) as http:
            reg = http.post(
                "/api/v1/auth/register",
                json={"email": unique_email("metrics"), "password": PASSWORD, "organization_name": "Metrics"},
            )
            assert reg.status_code == 201, reg.text
            headers = {"Authorization": f"Bearer {reg.json()['tokens']['access_token']}"}
            conn = http.post(
                "/api/v1/connections",
                json={"marketplace": "wildberries", "name": "Demo", "credentials": seller.credentials},
                headers=headers,
            )
            assert conn.status_code == 201, conn.text
            run = http.post(f"/api/v1/connections/{conn.json()['id']}/syncs", headers=headers)
            assert run.status_code == 202, run.text
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                status = http.get(f"/api/v1/syncs/{run.json()['id']}", headers=headers).json()["status"]
                if status in ("succeeded", "partially_failed", "failed"):
                    break
                time.sleep(0.3)
            assert status == "succeeded", status
            # Cached reads (a miss, then a hit) and the products list, like a dashboard would.
            for _ in range(2):
                assert http.get("/api/v1/products", headers=headers).status_code == 200
            return str(reg.json()["tenant"]["id"])
    finally:
        seller.delete()


def test_every_metric_a_panel_or_rule_reads_is_served(deployment: Deployment, marketplace_sandbox):
    d = deployment
    tenant_id = demo_sync(d.api_url, marketplace_sandbox)
    api = scrape(f"{d.api_url}/metrics", d.metrics_token)
    # The worker's state gauges are computed at scrape time and reused for a few seconds.
    deadline = time.monotonic() + 15
    while True:
        worker = scrape(d.worker_metrics_url, d.metrics_token)
        if worker["stock_tracker_active_tenants"][0][1] >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    problems = [f"api: {p}" for p in missing_from(api, "api")] + [
        f"worker: {p}" for p in missing_from(worker, "worker")
    ]
    assert not problems, "\n".join(problems)

    # The values are real, not placeholders.
    def value(samples, name, **labels):
        return sum(v for lab, v in samples[name] if all(lab.get(k) == x for k, x in labels.items()))

    assert value(worker, "stock_tracker_active_tenants") >= 1
    assert value(worker, "stock_tracker_sync_runs_total", marketplace="wildberries", outcome="succeeded") >= 1
    assert value(worker, "stock_tracker_jobs_total", function="sync.connection", outcome="succeeded") >= 1
    assert value(worker, "stock_tracker_job_duration_seconds_count", function="sync.connection") >= 1
    assert value(worker, "stock_tracker_jobs_in_progress", function="sync.connection") == 0
    assert value(worker, "stock_tracker_queue_depth") == 0
    assert value(worker, "stock_tracker_outbox_backlog") >= 0
    assert {lab["marketplace"] for lab, _ in worker["stock_tracker_marketplace_tokens_expiring"]} >= {
        "wildberries",
        "ozon",
    }
    # Counters a rule reads exist at 0 before their first event (the first one is then an increase).
    assert value(worker, "stock_tracker_webhook_endpoints_disabled_total") == 0
    assert value(worker, "stock_tracker_sync_runs_total", marketplace="ozon", outcome="failed") == 0
    # Our labels never collide with Prometheus' target labels, and no tenant id is a label.
    for samples in (api, worker):
        for name, series in samples.items():
            for labels, _ in series:
                assert "job" not in labels and "instance" not in labels, name
                assert tenant_id not in labels.values(), name
