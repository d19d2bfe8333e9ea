"""The dashboard, the alert rules and deploy/metrics.json agree, and the checks behind them catch mistakes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts.deploycheck import catalog, rules
from scripts.deploycheck.promql import PromQLError, select

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
RUNBOOK = ROOT / "docs" / "operations.md"


def test_metrics_catalog_is_what_the_panels_and_rules_read() -> None:
    problems, cat = catalog.build()
    assert problems == []
    assert catalog.CATALOG.read_text() == catalog.render(cat), "run: python scripts/check_deploy.py --write"
    metrics = json.loads(catalog.CATALOG.read_text())["metrics"]
    # spot checks of the contract other code relies on
    assert metrics["stock_tracker_cache_requests_total"]["labels"] == ["outcome"]
    assert set(metrics["stock_tracker_sync_runs_total"]["labels"]) == {"marketplace", "outcome", "reason"}
    assert metrics["stock_tracker_jobs_total"]["labels"] == ["function", "outcome"]
    assert {"stock_tracker_queue_depth", "stock_tracker_active_tenants"} <= set(metrics)


def test_every_alert_has_severity_summary_and_a_runbook_that_exists() -> None:
    problems, reads = rules.check(ALERTS, RUNBOOK)
    assert problems == []
    names = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    required = {
        "StockTrackerSyncFailureRatio",
        "StockTrackerQueueBacklog",
        "StockTrackerOutboxStuck",
        "StockTrackerHigh5xxRatio",
        "StockTrackerWebhookEndpointDisabled",
        "StockTrackerMarketplaceTokenExpiring",
    }
    assert required <= names
    assert len(reads) == len(names)


def test_rule_check_catches_broken_rules(tmp_path: Path) -> None:
    bad = {
        "groups": [
            {
                "name": "g",
                "rules": [
                    {"alert": "NoRunbook", "expr": "up == 0", "labels": {"severity": "warning"},
                     "annotations": {"summary": "s"}},
                    {"alert": "MissingSection", "expr": "up == 0", "for": "5 minutes", "labels": {"severity": "page"},
                     "annotations": {"summary": "s", "runbook_url": "docs/operations.md#no-such-section"}},
                    {"alert": "BadExpr", "expr": "sum(rate(up[5m])", "labels": {"severity": "info"},
                     "annotations": {"summary": "s", "runbook_url": "docs/operations.md#backups"}},
                ],
            },
            {"name": "g", "rules": []},
        ]
    }  # fmt: skip
    path = tmp_path / "alerts.yml"
    path.write_text(yaml.safe_dump(bad))
    problems, _ = rules.check(path, RUNBOOK)
    text = "\n".join(problems)
    assert "NoRunbook: runbook_url" in text
    assert "#no-such-section is not in docs/operations.md" in text
    assert "`for` '5 minutes' is not a duration" in text
    assert "labels.severity" in text
    assert "BadExpr: expr: unbalanced" in text
    assert "repeated" in text and "no rules" in text


def test_promql_reader() -> None:
    sel = select(
        'histogram_quantile(0.95, sum by (le, function) (rate(stock_tracker_job_duration_seconds_bucket{function!=""}'
        "[$__rate_interval])))"
    )
    assert sel.metrics == {"stock_tracker_job_duration_seconds_bucket": {"le", "function"}}
    sel = select('sum(rate(a_total{x="1"}[5m])) by (y) / on (z) group_left sum(b_total) or vector(0)')
    assert sel.metrics == {"a_total": {"x", "y", "z"}, "b_total": {"z"}}
    assert select("label_values(http_server_request_duration_seconds_count, http_route)").metrics == {
        "http_server_request_duration_seconds_count": {"http_route"}
    }
    for broken in ("sum(rate(x[5m])", "rated(x[5m])", "x{a=~1}", 'x{a="1"'):
        with pytest.raises(PromQLError):
            select(broken)


def test_catalog_rejects_labels_prometheus_would_rename(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    board = json.loads((catalog.DASHBOARDS / "stock-tracker.json").read_text())
    board["panels"].append(
        {"id": 999, "type": "timeseries", "title": "Jobs by job",
         "targets": [{"expr": "sum by (job) (rate(stock_tracker_jobs_total[5m]))"}]}
    )  # fmt: skip
    board["panels"].append(
        {"id": 998, "type": "stat", "title": "Nobody emits this", "targets": [{"expr": "sum(stock_tracker_nothing)"}]}
    )
    (tmp_path / "stock-tracker.json").write_text(json.dumps(board))
    monkeypatch.setattr(catalog, "DASHBOARDS", tmp_path)
    problems, _ = catalog.build()
    assert any("Jobs by job" in p and "['job']" in p for p in problems)
    assert any("stock_tracker_nothing has no emitter" in p for p in problems)


def test_prometheus_config_loads_the_rules() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert {j["job_name"] for j in config["scrape_configs"]} >= {"stock-tracker-api", "stock-tracker-worker"}


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool is not installed (CI installs it)")
def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    where = ROOT / "deploy" / "prometheus"
    for cmd in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        run = subprocess.run(["promtool", *cmd], cwd=where, capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
