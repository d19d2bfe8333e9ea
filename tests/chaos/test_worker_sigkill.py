"""The worker SIGKILLed three times during queued syncs (issue 14 §6), restarted each time as its supervisor
would: every run *succeeds* — the killed ones resumed by the sweep under fresh jobs (issue 13 §3, "no lost
job") — within lease + 60 s of the last kill, no stock history point is written twice, a sync after the
kills succeeds, and every alert event reaches the webhook endpoint exactly once."""

from __future__ import annotations

import pytest

from tests.chaos.scenarios import LEASE_S, dump, worker_sigkill

pytestmark = pytest.mark.chaos


async def test_worker_sigkill_during_syncs_every_run_succeeds(healthy):
    figures = await worker_sigkill(healthy, syncs=20, kills=3)
    print(dump(figures))
    assert all(n > 0 for n in figures["running_at_each_kill"]), figures  # each kill met syncs mid-way
    # Checked first because it decides the rest at once: a lock that outlives the deadline keeps its runs.
    assert figures["locks_longer_than_lease"] == {}, figures
    assert figures["ended"] == figures["syncs"], figures
    assert figures["failed_without_reason"] == 0, figures
    # No lost job: the killed runs were resumed, none abandoned (each was killed at most once, under the bound).
    assert figures["succeeded"] == figures["syncs"] and figures["abandoned"] == 0, figures
    assert figures["resumed"] > 0, figures  # the kills did stop syncs, which the sweep handed on
    assert figures["lease_s"] <= LEASE_S, figures
    assert figures["ended_within_s"] <= figures["lease_s"] + 60, figures
    assert figures["history_duplicates"] == 0, figures
    assert figures["sync_after_kills"] == "succeeded", figures
    assert figures["events"] > 0, figures
    assert figures["webhooks_missing"] == 0 and figures["webhooks_duplicated"] == 0, figures
