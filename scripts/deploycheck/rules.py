"""The alert rules' shape (what `promtool check rules` checks, less the full PromQL grammar, plus our own
conventions: a severity, a summary, a runbook section that exists)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from scripts.deploycheck.promql import PromQLError, Selection, select

SEVERITIES = ("info", "warning", "critical")
_DURATION = re.compile(r"^(\d+(ms|[smhdwy]))+$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUERY = re.compile(r'query\s+"((?:\\.|[^"\\])*)"')
_RULE_KEYS = {"alert", "record", "expr", "for", "keep_firing_for", "labels", "annotations"}
_GROUP_KEYS = {"name", "interval", "rules", "limit", "query_offset", "labels"}


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors of a Markdown document."""
    out: set[str] = set()
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            text = re.sub(r"[`*_]", "", m.group(1)).strip().lower()
            slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
            out.add(slug)
    return out


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping")
    return data


def check(path: Path, runbook: Path) -> tuple[list[str], dict[str, Selection]]:
    """Problems found in the rule file, and what each rule's expressions (and annotation queries) read."""
    problems: list[str] = []
    reads: dict[str, Selection] = {}
    data = load(path)
    runbook_anchors = anchors(runbook.read_text())
    if set(data) != {"groups"}:
        problems.append(f"top level must be exactly `groups`, found {sorted(data)}")
    groups = data.get("groups") or []
    seen_groups: set[str] = set()
    seen_alerts: dict[str, str] = {}
    for g in groups:
        name = g.get("name")
        if not name or name in seen_groups:
            problems.append(f"group name missing or repeated: {name!r}")
        seen_groups.add(name)
        for key in set(g) - _GROUP_KEYS:
            problems.append(f"group {name}: unknown key {key!r}")
        if not g.get("rules"):
            problems.append(f"group {name}: no rules")
        for r in g.get("rules") or []:
            label = r.get("alert") or r.get("record") or "?"
            where = f"{name}/{label}"
            for key in set(r) - _RULE_KEYS:
                problems.append(f"{where}: unknown key {key!r}")
            if ("alert" in r) == ("record" in r):
                problems.append(f"{where}: exactly one of `alert` and `record`")
                continue
            if "alert" in r and not _NAME.match(r["alert"]):
                problems.append(f"{where}: invalid alert name")
            for key in ("for", "keep_firing_for"):
                if key in r and not _DURATION.match(str(r[key])):
                    problems.append(f"{where}: `{key}` {r[key]!r} is not a duration")
            sel = Selection()
            try:
                for metric, labels in select(str(r.get("expr", ""))).metrics.items():
                    sel.add(metric, labels)
            except PromQLError as exc:
                problems.append(f"{where}: expr: {exc}")
            if not str(r.get("expr", "")).strip():
                problems.append(f"{where}: empty expr")
            if "alert" in r:
                labels = r.get("labels") or {}
                if labels.get("severity") not in SEVERITIES:
                    problems.append(f"{where}: labels.severity must be one of {SEVERITIES}")
                notes = r.get("annotations") or {}
                if not notes.get("summary"):
                    problems.append(f"{where}: annotations.summary is missing")
                url = str(notes.get("runbook_url", ""))
                doc, _, anchor = url.partition("#")
                if doc != "docs/operations.md" or not anchor:
                    problems.append(f"{where}: runbook_url must be docs/operations.md#<section>")
                elif anchor not in runbook_anchors:
                    problems.append(f"{where}: runbook section #{anchor} is not in docs/operations.md")
                if r["alert"] in seen_alerts and seen_alerts[r["alert"]] != url:
                    problems.append(f"{where}: same alert name with another runbook")
                seen_alerts[r["alert"]] = url
                for text in notes.values():
                    for q in _QUERY.findall(str(text)):
                        try:
                            for metric, lbls in select(q.encode().decode("unicode_escape")).metrics.items():
                                sel.add(metric, lbls)
                        except PromQLError as exc:
                            problems.append(f"{where}: annotation query: {exc}")
            reads[where] = sel
    return problems, reads
