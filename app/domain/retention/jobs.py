"""The retention cron: delete (and compact) what has outlived its use, a batch at a time, every 10 minutes.

Each batch is its own short transaction, so the sweep never holds locks for long and a crash loses at most
one batch of progress (the next run continues: every step is "delete what is old now"). A run stops when
nothing is left or after ``Settings.retention_budget_seconds``. Periods: docs/decisions.md.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import structlog

from app.db.engine import session_scope
from app.domain.billing.services import PLANS, effective_plan
from app.domain.jobcontext import JobContext
from app.domain.retention.repositories import RetentionSystemRepository
from app.observability.metrics import instruments

log = structlog.get_logger(__name__)


async def retention_sweep(ctx: JobContext) -> dict[str, int]:
    settings = ctx["settings"]
    # While billing is off every tenant has the self-hosted plan's limits, whatever its stored plan says.
    history_days = {
        code: effective_plan(code, billing_enabled=settings.billing_enabled).history_retention_days for code in PLANS
    }
    default_days = effective_plan(
        settings.billing_default_plan, billing_enabled=settings.billing_enabled
    ).history_retention_days
    totals: dict[str, int] = {}
    deadline = time.monotonic() + settings.retention_budget_seconds
    while True:
        async with session_scope(ctx["sessionmaker"]) as session:
            done = await RetentionSystemRepository(session).sweep_batch(
                batch=settings.retention_batch,
                event_days=settings.retention_event_days,
                ops_days=settings.retention_operational_days,
                sync_run_days=settings.retention_sync_run_days,
                history_days_by_plan=history_days,
                default_history_days=default_days,
            )
        for target, count in done.items():
            if count:
                totals[target] = totals.get(target, 0) + count
                instruments().retention_deleted.add(count, {"target": target})
        if all(count < settings.retention_batch for count in done.values()) or time.monotonic() > deadline:
            break
    if totals:
        log.info("retention.swept", **totals)
    return totals


async def history_partitions(ctx: JobContext) -> dict[str, int]:
    """Cron, daily (and at worker start): stock history's month partitions for this month and the next
    ``history_partitions_ahead``, so a sync never writes into a month nobody created. A row that arrived in
    the default partition anyway (the cron had not run for months) moves into its month here."""
    months = 1 + ctx["settings"].history_partitions_ahead
    async with session_scope(ctx["sessionmaker"]) as session:
        created = await RetentionSystemRepository(session).ensure_history_partitions(datetime.now(UTC).date(), months)
    if created:
        moved = sum(created.values())
        (log.warning if moved else log.info)("history.partitions_created", partitions=sorted(created), moved=moved)
    return created
