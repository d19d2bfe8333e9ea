"""One deployment for the chaos tests (starting it costs 10-30 s; torn down when they are done): its own
PostgreSQL and Redis, never the shared test servers, because the scenarios stop and restart them. Each
scenario leaves it running."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.cluster import Cluster, cluster


@pytest.fixture(scope="package")
def chaos() -> Iterator[Cluster]:
    with cluster() as c:
        yield c


@pytest.fixture
def healthy(chaos: Cluster) -> Cluster:
    """The deployment, checked whole before a scenario (a previous one may have failed half-way)."""
    if not chaos.postgres.running():
        chaos.postgres.start()
    if chaos.redis.proc is None:
        chaos.redis.start()
    if not chaos.api.alive():
        chaos.start_api()
    if not chaos.worker.alive():
        chaos.start_worker()
    return chaos


@pytest.fixture(autouse=True)
def _quiet_httpx(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="httpx")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The API's SIGTERM scenario last among the chaos tests: it leaves the API stopped, and restarting it
    costs seconds of the suite's budget when nothing after it needs the API."""
    chaos = [n for n, i in enumerate(items) if i.nodeid.startswith("tests/chaos/")]
    if not chaos:
        return
    block = items[chaos[0] : chaos[-1] + 1]
    last = [i for i in block if i.nodeid.startswith("tests/chaos/test_api_sigterm.py")]
    items[chaos[0] : chaos[-1] + 1] = [i for i in block if i not in last] + last
