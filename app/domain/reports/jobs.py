"""arq jobs of the reports area: the Google Sheets push, and the daily report (its cron and its job)."""

from __future__ import annotations

import uuid
from datetime import date

import structlog

from app.domain.jobcontext import JobContext
from app.domain.reports.services import SheetsPusher, enqueue_due_daily_reports, send_daily_report
from app.lib.clock import utcnow

log = structlog.get_logger(__name__)


async def sheets_push(
    ctx: JobContext,
    *,
    tenant_id: str,
    link_id: str | None = None,
    connection_id: str | None = None,
    run_id: str | None = None,
) -> dict[str, int]:
    """Write the stock report to one link (on demand) or to every active link a sync concerns. Sheets' own
    429 / 5xx are retried inside the client; what is left is recorded on the link, not retried here (the
    next refresh writes the report again)."""
    pusher = SheetsPusher(
        ctx["sessionmaker"], ctx["cipher"], ctx["settings"], ctx["http"], ctx["sheets_tokens"], ctx["redis"]
    )
    outcomes = await pusher.push(
        uuid.UUID(tenant_id),
        link_id=uuid.UUID(link_id) if link_id else None,
        connection_id=uuid.UUID(connection_id) if connection_id else None,
    )
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


async def daily_reports_cron(ctx: JobContext) -> int:
    """Cron, every minute: enqueue the daily report of every organization whose time has come today."""
    return await enqueue_due_daily_reports(ctx["sessionmaker"], ctx["redis"], utcnow())


async def daily_report(ctx: JobContext, *, tenant_id: str, local_date: str) -> str:
    """One organization's daily report for one local date (a second run for the date does nothing)."""
    outcome = await send_daily_report(
        ctx["sessionmaker"], ctx["redis"], ctx["settings"], uuid.UUID(tenant_id), date.fromisoformat(local_date)
    )
    log.info("reports.daily_report", tenant_id=tenant_id, date=local_date, outcome=outcome)
    return outcome
