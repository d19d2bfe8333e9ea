"""The job the sync engine enqueues after each successful (or partially failed) sync."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import structlog

from app.domain.alerts.evaluation import AlertEvaluator
from app.domain.delivery import send_now
from app.domain.jobcontext import JobContext, job_session

log = structlog.get_logger(__name__)


async def evaluate_alerts(ctx: JobContext, *, tenant_id: str, connection_id: str, run_id: str) -> dict[str, Any]:
    """Evaluate the alert rules over the connection's synced stock; a second run for a run id changes nothing."""
    tid = uuid.UUID(tenant_id)
    async with job_session(ctx, tid) as session:
        settings = ctx["settings"]
        outcome = await AlertEvaluator(
            session,
            tid,
            settings.low_stock_units,
            baseline_after=timedelta(hours=settings.alert_baseline_after_hours),
            public_url=settings.public_url,
        ).evaluate(uuid.UUID(connection_id), uuid.UUID(run_id))
    await send_now(ctx, tid, outcome.published)
    log.info(
        "alerts.evaluated", connection_id=connection_id, run_id=run_id, evaluated=outcome.evaluated, **outcome.counts()
    )
    return {"evaluated": outcome.evaluated, **outcome.counts()}
