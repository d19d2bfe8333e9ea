"""The per-step record a sync run keeps (``SyncRun.stages``): timing, counts, failures, and reading it back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.domain.sync.records import Stage, StageLog, StageRecord, StageStatus
from app.integrations.marketplace import MarketplaceUnavailable


def test_a_step_records_its_time_counts_and_success():
    log = StageLog()
    with log.step("catalogue", Stage.FETCH) as record:
        record.counts = {"products": 40}
    assert log.to_json() == {
        "catalogue": {
            "stage": "fetch",
            "status": "success",
            "seconds": log.records["catalogue"].seconds,
            "error": None,
            "resume_at": None,
            "counts": {"products": 40},
        }
    }
    assert log.records["catalogue"].seconds >= 0


def test_a_failing_step_records_the_marketplace_error_and_propagates():
    log = StageLog()
    with pytest.raises(MarketplaceUnavailable), log.step("orders", Stage.FETCH):
        raise MarketplaceUnavailable(
            "wildberries orders: HTTP 500 after 3 attempts", marketplace="wildberries", endpoint="orders"
        )
    record = log.records["orders"]
    assert record.status is StageStatus.FAILED
    assert record.error == "wildberries orders: HTTP 500 after 3 attempts"
    assert log.failed(Stage.FETCH) == ["orders"]


def test_an_internal_error_is_recorded_without_its_internals():
    log = StageLog()
    with pytest.raises(KeyError), log.step("write_stock", Stage.WRITE):
        raise KeyError("postgresql://app:secret@db/stock")
    assert log.records["write_stock"].error == "KeyError"


def test_steps_group_by_stage_in_the_order_they_ran():
    log = StageLog()
    for name, stage in [("catalogue", Stage.FETCH), ("normalize", Stage.NORMALIZE), ("fbo_stock", Stage.FETCH)]:
        with log.step(name, stage):
            pass
    assert list(log.of(Stage.FETCH)) == ["catalogue", "fbo_stock"]
    assert list(log.records) == ["catalogue", "normalize", "fbo_stock"]
    assert log.failed(Stage.FETCH) == []


def test_a_stored_log_reads_back_as_it_was_written():
    resume_at = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    log = StageLog(
        {
            "catalogue": StageRecord(Stage.FETCH, seconds=1.25, counts={"products": 3}),
            "orders": StageRecord(Stage.FETCH, StageStatus.DEFERRED, resume_at=resume_at),
            "fbs_stock": StageRecord(Stage.FETCH, StageStatus.FAILED, 0.5, "wildberries stocks: HTTP 503"),
        }
    )
    again = StageLog.from_json(log.to_json())
    assert again.records == log.records
    assert again.records["orders"].resume_at == resume_at


def test_runs_recorded_before_records_had_a_shape_read_as_nothing_finished():
    old = {"catalogue": 1.3, "fbs_stock": "failed: HTTP 500", "write": 14.2}
    assert StageLog.from_json(old).records == {}
    assert StageLog.from_json(None).records == {}
