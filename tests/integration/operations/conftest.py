"""One API process and one worker process for the operations tests that read what a deployment shows
(its /metrics, its logs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.operations.support import Deployment, deploy


@pytest.fixture(scope="package")
def deployment(settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deploy(settings, tmp_path_factory.mktemp("deployment")) as d:
        yield d
