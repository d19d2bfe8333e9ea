"""`make bench`: every benchmark in turn, each printing its figures and writing bench/results/*.json."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHES = [
    ["bench.sync", "--products", "60000"],
    ["bench.fanout"],
    ["bench.ratelimit"],
    ["bench.redis_client"],
    ["bench.api"],
    ["bench.access_log"],
    ["bench.alerts"],
    ["bench.fleet", "--sellers", "200"],
    ["bench.history"],
    ["bench.reports"],
    ["bench.billing"],
]

if __name__ == "__main__":
    failed = []
    for args in BENCHES:
        if not (ROOT / (args[0].replace(".", "/") + ".py")).exists():
            continue
        print(f"\n### {' '.join(args)}", flush=True)
        if subprocess.run([sys.executable, "-m", *args], cwd=ROOT, check=False).returncode != 0:
            failed.append(args[0])
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        sys.exit(1)
