"""`stock-tracker dev`: the whole product on one machine, supervised, with embedded servers when needed.

Stops cleanly on SIGINT/SIGTERM: children first, then the embedded Redis and PostgreSQL (neither stops by
itself when this process ends), so no orphaned server is left behind. Data stays under ``--data-dir``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import FrameType

from app.cli.bootstrap import create_demo, run_migrations, seed_demo_connection
from app.lib.crypto import new_fernet_key
from app.lib.embedded import EmbeddedServers, pg_url

SECRETS_FILE = "dev-secrets.env"
DEMO_FILE = "demo-login.txt"
MAX_RESTARTS = 5


def _dev_secrets(data_dir: Path) -> dict[str, str]:
    """Development secrets, generated once and kept in the data dir (never used in production)."""
    path = data_dir / SECRETS_FILE
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key:
                values[key] = value
    changed = False
    if "STOCK_TRACKER_JWT_SECRET" not in values:
        values["STOCK_TRACKER_JWT_SECRET"] = secrets.token_urlsafe(48)
        changed = True
    if "STOCK_TRACKER_ENCRYPTION_KEYS" not in values:
        values["STOCK_TRACKER_ENCRYPTION_KEYS"] = new_fernet_key()
        changed = True
    if changed:
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)
    return values


class Supervisor:
    def __init__(self, host: str, port: int, data_dir: Path) -> None:
        self.host, self.port, self.data_dir = host, port, data_dir.resolve()
        self.servers = EmbeddedServers(self.data_dir)
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, list[str]] = {}
        self.restarts: dict[str, int] = {}
        self.stopping = False

    def _signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(_dev_secrets(self.data_dir))
        env.setdefault("STOCK_TRACKER_ENV", "development")
        env.setdefault("STOCK_TRACKER_LOG_FORMAT", "console")
        env["STOCK_TRACKER_SANDBOX_ENABLED"] = "true"
        base = f"http://{self.host}:{self.port}/sandbox"
        env.setdefault("STOCK_TRACKER_WB_BASE_URL", f"{base}/wb")
        env.setdefault("STOCK_TRACKER_OZON_BASE_URL", f"{base}/ozon")
        env.setdefault("STOCK_TRACKER_PUBLIC_URL", f"http://{self.host}:{self.port}")
        if not env.get("STOCK_TRACKER_DATABASE_URL"):
            owner = self.servers.start_postgres()
            assert self.servers.pg_socket_dir is not None
            env["STOCK_TRACKER_MIGRATION_DATABASE_URL"] = owner
            env["STOCK_TRACKER_DATABASE_URL"] = pg_url(self.servers.pg_socket_dir, user="stock_tracker_app")
            print(f"  postgres  embedded, socket in {self.servers.pg_socket_dir}")
        else:
            env.setdefault("STOCK_TRACKER_MIGRATION_DATABASE_URL", env["STOCK_TRACKER_DATABASE_URL"])
            print("  postgres  from STOCK_TRACKER_DATABASE_URL")
        if not env.get("STOCK_TRACKER_REDIS_URL"):
            env["STOCK_TRACKER_REDIS_URL"] = self.servers.start_redis()
            print(f"  redis     embedded, {env['STOCK_TRACKER_REDIS_URL']}")
        else:
            print("  redis     from STOCK_TRACKER_REDIS_URL")
        return env

    def spawn(self, name: str, env: dict[str, str]) -> None:
        self.children[name] = subprocess.Popen(self.commands[name], env=env)

    def run(self) -> int:
        started = time.perf_counter()
        signal.signal(signal.SIGINT, self._signal)
        signal.signal(signal.SIGTERM, self._signal)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        print(f"stock-tracker dev: data in {self.data_dir}")
        try:
            env = self.environment()
            os.environ.update(env)
            from app.config import load_settings

            run_migrations(env["STOCK_TRACKER_MIGRATION_DATABASE_URL"])
            settings = load_settings(env)
            demo_path = self.data_dir / DEMO_FILE
            if not demo_path.exists():
                password = secrets.token_urlsafe(12)
                email, created = asyncio.run(create_demo(settings, "demo@stock-tracker.local", password))
                if created:
                    demo_path.write_text(f"{email} / {password}\n")
                    demo_path.chmod(0o600)
            py = sys.executable
            self.commands = {
                "api": [
                    py,
                    "-m",
                    "app",
                    "api",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                ],
                "worker": [py, "-m", "app", "worker"],
            }
            for name in self.commands:
                self.spawn(name, env)
            if self._wait_live():
                if demo_path.exists():
                    email, _, password = demo_path.read_text().strip().partition(" / ")
                    seed_demo_connection(f"http://{self.host}:{self.port}", email, password)
                docs = f"http://{self.host}:{self.port}/schema"
                print(f"\n  API docs   {docs}\n  sandbox    http://{self.host}:{self.port}/sandbox/control/sellers")
                if demo_path.exists():
                    print(f"  demo login {demo_path.read_text().strip()}")
                print(f"  ready in {time.perf_counter() - started:.1f}s — Ctrl-C stops everything\n", flush=True)
            while not self.stopping:
                for name, proc in list(self.children.items()):
                    code = proc.poll()
                    if code is not None and not self.stopping:
                        self.restarts[name] = self.restarts.get(name, 0) + 1
                        if self.restarts[name] > MAX_RESTARTS:
                            print(f"{name} keeps failing (exit {code}); stopping", file=sys.stderr)
                            self.stopping = True
                            break
                        print(f"{name} exited with {code}; restarting", file=sys.stderr)
                        time.sleep(1)
                        self.spawn(name, env)
                time.sleep(0.2)
            return 0
        finally:
            self.shutdown()

    def _wait_live(self, timeout: float = 60) -> bool:
        url = f"http://{self.host}:{self.port}/health/live"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return True
            except OSError:
                time.sleep(0.2)
        return False

    def shutdown(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.children.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        self.servers.stop()
        print("stock-tracker dev: stopped")


def run_dev(host: str, port: int, data_dir: str) -> int:
    return Supervisor(host, port, Path(data_dir)).run()
