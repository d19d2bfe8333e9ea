"""A short soak at a steady mixed load (issue 14 §6; `bench/chaos.py --minutes 10` is the full one): no
request fails, and the API's and the worker's memory, file descriptors and server connections stay flat —
bounded by their pools, not growing with the requests served."""

from __future__ import annotations

import pytest

from tests.chaos.scenarios import dump, soak

pytestmark = pytest.mark.chaos


async def test_soak_resources_stay_flat(healthy):
    figures = await soak(healthy, seconds=12, sample_every=3)
    print(dump(figures))
    points = figures["points"]
    assert figures["failed"] == 0 and figures["requests"] > 300, figures
    settings = healthy.settings
    pools = 2 * (settings.db_pool_size + settings.db_max_overflow)  # the API's and the worker's engines
    assert max(p["postgres_app"] for p in points) <= pools, figures
    warm, last = points[2], points[-1]  # idle, then a first interval that warms caches, pools and imports
    for key, slack in (("api_fds", 8), ("worker_fds", 8), ("postgres_app", 2), ("redis", 4)):
        assert last[key] <= warm[key] + slack, (key, figures)
    # A short run cannot show a slow leak (the benchmark's per-minute figures do); it catches a gross one.
    assert last["api_rss_mb"] - warm["api_rss_mb"] < 25, figures
    assert last["worker_rss_mb"] - warm["worker_rss_mb"] < 25, figures
