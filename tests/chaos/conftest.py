"""One deployment for the whole chaos suite (starting it costs ~10 s): its own PostgreSQL and Redis, never the
shared test servers, because the scenarios stop and restart them. Each scenario leaves it running."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos.cluster import Cluster, cluster


@pytest.fixture(scope="session")
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
