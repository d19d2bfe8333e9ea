"""PostgreSQL restarted under API load (issue 14 §6): only 503 `database_unavailable` with Retry-After while
it is down, every request served again within 5 s of its return, and no half-written sign-up."""

from __future__ import annotations

import pytest

from tests.chaos.scenarios import dump, postgres_restart

pytestmark = pytest.mark.chaos


async def test_postgres_restart_under_load(healthy):
    figures = await postgres_restart(healthy, outage_s=3.0)
    print(dump(figures))
    assert figures["failed"] > 0, "the outage was not even noticed: the scenario did not test anything"
    assert figures["other_failures"] == [], figures
    assert figures["failures_outside_outage"] == 0, figures
    assert figures["recovery_s"] <= 5.0, figures
    assert figures["partial_writes"] == 0, figures
    assert figures["signups_ok"] > 0, figures
