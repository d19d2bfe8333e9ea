"""The run-lifecycle settings and wiring: the wait cap, lease and resume bound are validated, the sweep is a
registered cron, and a run's next job has an id derived from its first job's."""

from __future__ import annotations

import pytest

from app.config import SettingsError, load_settings
from app.domain.sync.jobs import next_job_id
from app.domain.sync.services import hop_of
from app.worker.settings import build_worker_settings
from tests.unit.test_config import GOOD


def test_the_wait_cap_and_the_lease_have_their_defaults_and_are_validated():
    s = load_settings(GOOD)
    assert (s.sync_max_wait_s, s.sync_lease_s) == (600, 30)
    assert load_settings({**GOOD, "STOCK_TRACKER_SYNC_MAX_WAIT_S": "45"}).sync_max_wait_s == 45
    for bad in ("0", "61"):  # a lease is at most 60 s (issue 14)
        with pytest.raises(SettingsError, match="SYNC_LEASE_S"):
            load_settings({**GOOD, "STOCK_TRACKER_SYNC_LEASE_S": bad})
    with pytest.raises(SettingsError, match="SYNC_MAX_WAIT_S"):
        load_settings({**GOOD, "STOCK_TRACKER_SYNC_MAX_WAIT_S": "-1"})


def test_the_resume_bound_has_its_default_and_is_validated():
    assert load_settings(GOOD).sync_max_resumes == 2
    assert load_settings({**GOOD, "STOCK_TRACKER_SYNC_MAX_RESUMES": "0"}).sync_max_resumes == 0
    for bad in ("-1", "11"):
        with pytest.raises(SettingsError, match="SYNC_MAX_RESUMES"):
            load_settings({**GOOD, "STOCK_TRACKER_SYNC_MAX_RESUMES": bad})


def test_the_sweep_is_a_cron_of_every_worker_that_runs_crons():
    s = load_settings(GOOD)
    crons = {c.name: c for c in build_worker_settings(s, serve_metrics=False)["cron_jobs"]}
    sweep = crons["cron:sync-run-sweep"]
    assert sweep.unique and sweep.run_at_startup and len(sweep.second) == 4  # every 15 s
    off = load_settings({**GOOD, "STOCK_TRACKER_WORKER_CRONS": "false"})
    assert build_worker_settings(off, serve_metrics=False)["cron_jobs"] == []


def test_a_run_is_handed_on_under_its_first_jobs_id():
    assert next_job_id("sync:c:42", 0) == "sync:c:42+1"
    assert next_job_id("sync:c:42+1", 1) == "sync:c:42+2"
    assert next_job_id("sync:c:manual:r+7", 7) == "sync:c:manual:r+8"


def test_a_resumed_run_takes_the_hop_after_its_last_job():
    """The sweep reads the hop from the run's last job id: the resumed job is the next hop, never one of
    the ids the run already used."""
    assert hop_of("sync:c:42") == 0 and hop_of("sync:c:manual:r") == 0
    assert hop_of("sync:c:42+3") == 3
    assert next_job_id("sync:c:42+3", hop_of("sync:c:42+3")) == "sync:c:42+4"
    assert hop_of("sync:c:42+x") == 0
