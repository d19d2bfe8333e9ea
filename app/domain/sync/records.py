"""What a sync run records of each stage it ran: status, time, counts and its own failure (``SyncRun.stages``).

``SyncRun.stages`` maps a step name to one record, for example::

    "fbs_stock": {"stage": "fetch", "status": "success", "seconds": 0.41, "error": null,
                  "resume_at": null, "counts": {"stock_rows": 5210, "warehouses": 3}}

Steps are the units that can succeed, fail or (later) wait on their own: each marketplace source of the
fetch stage (``catalogue``, ``fbo_stock``, ``fbs_stock``, ``orders``), ``normalize``, each table group of
the write stage (``write_catalog``, ``write_stock``, ``write_orders``), ``evaluate`` and ``publish``;
``stage`` names the pipeline stage a step belongs to. A step that did not run has no record.

``deferred`` with ``resume_at`` marks a step whose marketplace budget is spent: a slow-budget step (the
orders feed) is done by the next run, any other step by this run's next job (the run is ``waiting``); its
``error`` says which limit. A step that lost part of its source (one seller warehouse of several) is
``failed`` with its errors, never ``success``. ``StageLog.from_json`` reads a stored log back so a resumed
run can tell which steps are finished.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.integrations.marketplace import MarketplaceError


class StageStatus(enum.StrEnum):
    SUCCESS = "success"
    FAILED = "failed"
    DEFERRED = "deferred"


class Stage(enum.StrEnum):
    FETCH = "fetch"
    NORMALIZE = "normalize"
    WRITE = "write"
    EVALUATE = "evaluate"
    PUBLISH = "publish"


@dataclass(slots=True)
class StageRecord:
    stage: Stage
    status: StageStatus = StageStatus.SUCCESS
    seconds: float = 0.0
    error: str | None = None
    resume_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def fail(self, exc: BaseException) -> None:
        self.status = StageStatus.FAILED
        self.error = public_error(exc)

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage.value,
            "status": self.status.value,
            "seconds": self.seconds,
            "error": self.error,
            "resume_at": self.resume_at.isoformat() if self.resume_at else None,
            "counts": dict(self.counts),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StageRecord:
        resume_at = data.get("resume_at")
        return cls(
            stage=Stage(data["stage"]),
            status=StageStatus(data["status"]),
            seconds=float(data.get("seconds") or 0.0),
            error=data.get("error"),
            resume_at=datetime.fromisoformat(resume_at) if resume_at else None,
            counts={str(k): int(v) for k, v in (data.get("counts") or {}).items()},
        )


def public_error(exc: BaseException) -> str:
    """What a record may say about a failure: a marketplace's own message, else only the error's type (no
    internals reach the API)."""
    return str(exc)[:500] if isinstance(exc, MarketplaceError) else type(exc).__name__


class StageLog:
    """The records of one run, in the order its steps ran."""

    def __init__(self, records: dict[str, StageRecord] | None = None) -> None:
        self.records: dict[str, StageRecord] = dict(records or {})
        self.calls = 0  # marketplace requests this run has sent (over all its jobs): its counts.calls

    @contextmanager
    def step(self, name: str, stage: Stage) -> Iterator[StageRecord]:
        """Time the block as step ``name``; an exception marks the step failed (with its error) and propagates."""
        record = StageRecord(stage)
        self.records[name] = record
        started = time.perf_counter()
        try:
            yield record
        except BaseException as exc:  # a cancelled step (lease lost, shutdown) did not succeed either
            record.fail(exc)
            raise
        finally:
            record.seconds = round(time.perf_counter() - started, 3)

    def of(self, stage: Stage) -> dict[str, StageRecord]:
        return {name: r for name, r in self.records.items() if r.stage is stage}

    def failed(self, stage: Stage) -> list[str]:
        return [name for name, r in self.of(stage).items() if r.status is StageStatus.FAILED]

    def to_json(self) -> dict[str, Any]:
        return {name: record.to_json() for name, record in self.records.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> StageLog:
        # Runs recorded before stages had a shape stored bare seconds: those read as nothing finished.
        return cls(
            {
                name: StageRecord.from_json(record)
                for name, record in (data or {}).items()
                if isinstance(record, Mapping) and "stage" in record
            }
        )
