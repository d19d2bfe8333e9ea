"""deploy/metrics.json: every metric (and label) that a Grafana panel or a Prometheus alert rule reads.

The file is generated from the dashboards and the rules (``python scripts/check_deploy.py --write``) and a
test keeps it equal to what they read, so it can be trusted as the contract the code's /metrics must meet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scripts.deploycheck import rules
from scripts.deploycheck.promql import TARGET_LABELS, PromQLError, Selection, select

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
RUNBOOK = ROOT / "docs" / "operations.md"
CATALOG = ROOT / "deploy" / "metrics.json"

# Which process serves each metric family (series suffixes _count/_bucket/_sum/_total belong to their
# family). "prometheus" = made by Prometheus itself, not by our code. A new metric in a panel or rule must be
# added here, so nobody ships a panel without deciding who emits its data.
EMITTERS: dict[str, str] = {
    "http_server_request_duration_seconds": "api",
    "stock_tracker_errors": "api",
    "stock_tracker_rate_limit_rejections": "api",
    "stock_tracker_rate_limit_lease_served": "api",
    "stock_tracker_rate_limit_lease_tokens_returned": "api",
    "stock_tracker_cache_requests": "api",
    "stock_tracker_active_tenants": "worker",
    "stock_tracker_queue_depth": "worker",
    "stock_tracker_queue_oldest_age_seconds": "worker",
    "stock_tracker_jobs": "worker",
    "stock_tracker_jobs_in_progress": "worker",
    "stock_tracker_job_duration_seconds": "worker",
    "stock_tracker_outbox_backlog": "worker",
    "stock_tracker_outbox_oldest_age_seconds": "worker",
    "stock_tracker_sync_runs": "worker",
    "stock_tracker_sync_duration_seconds": "worker",
    "stock_tracker_marketplace_calls": "worker",
    "stock_tracker_marketplace_tokens_expiring": "worker",
    "stock_tracker_webhook_attempts": "worker",
    "stock_tracker_webhook_endpoints_disabled": "worker",
    "stock_tracker_alerts_raised": "worker",
    "up": "prometheus",
}
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def family(series: str) -> str:
    for suffix in _SUFFIXES:
        if series.endswith(suffix) and series[: -len(suffix)] in EMITTERS:
            return series[: -len(suffix)]
    return series


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in panels:
        out.append(p)
        out.extend(_panels(p.get("panels") or []))
    return out


def dashboard_reads(path: Path) -> tuple[list[str], dict[str, Selection]]:
    """Problems in one dashboard's queries, and what each panel (and template variable) reads."""
    problems: list[str] = []
    reads: dict[str, Selection] = {}
    board = json.loads(path.read_text())
    for p in _panels(board.get("panels") or []):
        for t in p.get("targets") or []:
            expr = t.get("expr")
            if not expr:
                continue
            where = f"{board.get('title')}: {p.get('title')}"
            try:
                sel = select(expr)
            except PromQLError as exc:
                problems.append(f"{where}: {exc}")
                continue
            reads.setdefault(where, Selection())
            for metric, labels in sel.metrics.items():
                reads[where].add(metric, labels)
    for var in (board.get("templating") or {}).get("list") or []:
        query = var.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        if var.get("type") == "query" and query:
            where = f"{board.get('title')}: variable ${var.get('name')}"
            try:
                reads[where] = select(query)
            except PromQLError as exc:
                problems.append(f"{where}: {exc}")
    return problems, reads


def build() -> tuple[list[str], dict[str, Any]]:
    """Problems found, and the catalogue the dashboards and rules imply."""
    problems: list[str] = []
    used: dict[str, dict[str, Any]] = {}

    def note(source: str, sel: Selection) -> None:
        for series, labels in sel.metrics.items():
            fam = family(series)
            if fam not in EMITTERS:
                problems.append(f"{source}: {series} has no emitter in scripts/deploycheck/catalog.py EMITTERS")
            ours = EMITTERS.get(fam) != "prometheus"
            if ours and labels & TARGET_LABELS:
                # Prometheus renames a scraped `job`/`instance` label to `exported_job`/`exported_instance`
                # (its target labels win): a query on our metric by `job` reads the scrape job instead.
                problems.append(f"{source}: {series} by {sorted(labels & TARGET_LABELS)}: use another label name")
            entry = used.setdefault(series, {"emitted_by": EMITTERS.get(fam, "?"), "labels": set(), "used_by": set()})
            entry["labels"] |= labels
            entry["used_by"].add(source)

    for path in sorted(DASHBOARDS.glob("*.json")):
        found, reads = dashboard_reads(path)
        problems += found
        for where, sel in reads.items():
            note(f"panel {where}", sel)
    found, reads = rules.check(ALERTS, RUNBOOK)
    problems += found
    for where, sel in reads.items():
        note(f"alert {where}", sel)

    catalog = {
        "about": (
            "Every metric series and label read by deploy/grafana/dashboards/*.json and "
            "deploy/prometheus/alerts.yml, and the process whose /metrics must serve it. Generated by "
            "`python scripts/check_deploy.py --write`; tests/deploy keeps it equal to what the files read. "
            "Our metrics never use the label names `job` or `instance`: those are Prometheus' target labels "
            "(a scraped one is renamed `exported_job`), so the check rejects them."
        ),
        "metrics": {
            series: {
                "emitted_by": e["emitted_by"],
                "labels": sorted(e["labels"]),
                "used_by": sorted(e["used_by"]),
            }
            for series, e in sorted(used.items())
        },
    }
    return problems, catalog


def render(catalog: dict[str, Any]) -> str:
    return json.dumps(catalog, indent=2, ensure_ascii=False) + "\n"
