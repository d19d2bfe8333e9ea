"""Redis stopped (issue 14 §6): the documented behaviour holds while it is down — the limiter fails open, the
cache steps aside, readiness says so, a sync request is accepted and its job waits in the outbox — and once
it is back the syncs run and every alert reaches the webhook endpoint exactly once."""

from __future__ import annotations

import pytest

from tests.chaos.scenarios import dump, redis_outage

pytestmark = pytest.mark.chaos


async def test_redis_outage_then_outbox_delivers_exactly_once(healthy):
    figures = await redis_outage(healthy, outage_s=3.0)
    print(dump(figures))
    assert figures["failed_during"] == 0, figures  # fail-open: reads and sync requests are served …
    assert figures["limiter_checks_skipped"] >= figures["requests_during"], figures  # … and counted as skipped
    assert figures["requests_during"] > 5, figures
    assert "hit" not in figures["x_cache_during"], figures  # the cache steps aside: answered from PostgreSQL
    assert figures["ready_during"] == {"503": figures["ready_during"].get("503", 0)}, figures
    assert figures["outbox_pending_during"] >= 2, figures  # the two sync jobs wait in PostgreSQL
    assert figures["run_statuses"] == {"succeeded": 2}, figures
    assert figures["events"].get("stock.low", 0) == figures["low_products"], figures
    assert figures["webhooks_missing"] == 0 and figures["webhooks_duplicated"] == 0, figures
    assert figures["read_after"] == 200
