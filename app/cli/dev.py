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


def _dev_stripe_keys(data_dir: Path) -> dict[str, str]:
    """A made-up Stripe key and webhook secret for the stand-in, generated once (development only)."""
    path = data_dir / SECRETS_FILE
    values = _dev_secrets(data_dir)
    wanted = {
        "STOCK_TRACKER_DEV_STRIPE_SECRET_KEY": lambda: "sk_test_dev_" + secrets.token_hex(12),
        "STOCK_TRACKER_DEV_STRIPE_WEBHOOK_SECRET": lambda: "whsec_dev_" + secrets.token_hex(16),
    }
    missing = {k: make() for k, make in wanted.items() if k not in values}
    if missing:
        values.update(missing)
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)
    return {
        "STOCK_TRACKER_STRIPE_SECRET_KEY": values["STOCK_TRACKER_DEV_STRIPE_SECRET_KEY"],
        "STOCK_TRACKER_STRIPE_WEBHOOK_SECRET": values["STOCK_TRACKER_DEV_STRIPE_WEBHOOK_SECRET"],
    }


def provision_stripe_standin(base_url: str, env: dict[str, str]) -> str:
    """Create the stand-in's account for the dev keys (it lives in the API process's memory: again after a
    restart), point its webhooks at the API, and sync the plan catalogue into it. Returns a status line."""
    import httpx

    answer = httpx.post(
        f"{base_url}/sandbox/control/stripe/accounts",
        json={
            "secret_key": env["STOCK_TRACKER_STRIPE_SECRET_KEY"],
            "webhook_url": f"{base_url}/api/v1/billing/stripe/webhook",
            "webhook_secret": env["STOCK_TRACKER_STRIPE_WEBHOOK_SECRET"],
        },
        timeout=10,
    )
    if answer.status_code not in (201, 409):  # 409: the account exists already
        return f"the Stripe stand-in refused the account ({answer.status_code})"
    from app.cli.billing import run_sync_catalog
    from app.config import load_settings

    lines = asyncio.run(run_sync_catalog(load_settings(env)))
    return f"Stripe stand-in ready: {len(lines)} plans and meters synced"


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
        self.stripe_standin = False

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
        self.stripe_standin = env.get("STOCK_TRACKER_BILLING") == "sandbox" and not env.get(
            "STOCK_TRACKER_STRIPE_SECRET_KEY"
        )
        if self.stripe_standin:
            # Billing against the sandbox's Stripe stand-in (mounted with the sandbox): keys made up here and
            # kept with the other development secrets; the account is created once the API answers.
            stripe = _dev_stripe_keys(self.data_dir)
            env.update(stripe)
            env["STOCK_TRACKER_STRIPE_API_BASE"] = f"{base}/stripe"
            print("  billing   Stripe stand-in at /sandbox/stripe (STOCK_TRACKER_BILLING=sandbox)")
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
                if self.stripe_standin:
                    print(f"  billing   {provision_stripe_standin(f'http://{self.host}:{self.port}', env)}")
                if demo_path.exists():
                    email, _, password = demo_path.read_text().strip().partition(" / ")
                    seed_demo_connection(f"http://{self.host}:{self.port}", email, password)
                docs = f"http://{self.host}:{self.port}/schema"
                print(f"\n  API docs   {docs}\n  sandbox    http://{self.host}:{self.port}/sandbox/control/sellers")
                if demo_path.exists():
                    print(f"  demo login {demo_path.read_text().strip()}")
                if self.stripe_standin:
                    print('  billing    as the demo owner: POST /api/v1/billing/checkout {"plan": "pro"}, open the url')
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
                        if name == "api" and self.stripe_standin and self._wait_live():
                            # The stand-in lived in the old API process: its objects are gone; start afresh.
                            print(f"  billing   {provision_stripe_standin(f'http://{self.host}:{self.port}', env)}")
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
