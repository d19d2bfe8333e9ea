"""The scheduled daily report, and the signed download link it announces.

At the organization's ``daily_report_time`` (its own time zone) the cron finds it due (``st_due_daily_reports``)
and enqueues ``reports.daily`` with a job id per organization and local date. The job claims the date in the
organization's settings row (a second job for the same date changes nothing), records ``report.ready`` (to
webhooks, with a signed download link valid for ``LINK_TTL``) and hands the Telegram delivery to
``telegram.daily_report``, which sends the XLSX to every linked chat — all in one transaction, so either
everything is scheduled or nothing is and the next tick tries again.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.engine import session_scope, set_tenant
from app.db.models import Tenant
from app.db.outbox import JobQueue, add_job, unit_of_work
from app.domain.events.services import record_event
from app.domain.reports.repositories import SettingsRepository, due_daily_reports
from app.domain.reports.services._files import ReportFile
from app.domain.reports.services._links import (
    LINK_TTL,
    ReportLink,
    ReportLinkInvalid,
    download_url,
    link_key,
    sign,
    verify,
)
from app.domain.reports.services._settings import org_settings
from app.domain.reports.services._stock import ReportService, StockReportQuery
from app.lib.clock import utcnow

DAILY_JOB = "reports.daily"
TELEGRAM_DAILY_JOB = "telegram.daily_report"
REPORT_READY = "report.ready"


async def enqueue_due_daily_reports(
    sessionmaker: async_sessionmaker[AsyncSession], queue: JobQueue, now: datetime
) -> int:
    """The cron's work: one ``reports.daily`` job per organization whose report is due (arq's job id keeps a
    second tick from enqueueing it twice; the job's claim keeps a second run from sending it twice)."""
    async with session_scope(sessionmaker) as s:
        due = await due_daily_reports(s, now)
    enqueued = 0
    for tenant_id, local_date in due:
        job = await queue.enqueue_job(
            DAILY_JOB,
            tenant_id=str(tenant_id),
            local_date=local_date.isoformat(),
            _job_id=f"daily-report:{tenant_id}:{local_date.isoformat()}",
        )
        enqueued += job is not None
    return enqueued


async def send_daily_report(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: JobQueue | None,
    settings: Settings,
    tenant_id: uuid.UUID,
    local_date: date,
) -> str:
    """Claim the date, announce ``report.ready`` with a download link, schedule the Telegram documents."""
    now = utcnow()
    async with unit_of_work(sessionmaker, queue, tenant_id) as s:
        if not await SettingsRepository(s, tenant_id).claim_daily_report(local_date):
            return "already_sent"
        org = await org_settings(s, tenant_id)
        expires = now + LINK_TTL
        link = ReportLink(
            tenant=tenant_id,
            format="xlsx",
            lang=org.locale,  # type: ignore[arg-type]
            window=org.report_window_days,
            expires=int(expires.timestamp()),
        )
        url = download_url(settings.public_url, sign(link_key(settings.jwt_secret), link))
        record_event(
            s,
            tenant_id,
            REPORT_READY,
            {
                "report": "stock",
                "format": "xlsx",
                "date": local_date.isoformat(),
                "timezone": org.timezone,
                "lang": org.locale,
                "window_days": org.report_window_days,
                "download_url": url,
                "expires_at": expires.isoformat(),
            },
            key=f"{REPORT_READY}:{tenant_id}:{local_date.isoformat()}",
        )
        add_job(
            s,
            TELEGRAM_DAILY_JOB,
            f"tg-daily:{tenant_id}:{local_date.isoformat()}",
            tenant_id=tenant_id,
            local_date=local_date.isoformat(),
        )
    return "sent"


class ReportDownloadService:
    """Opens a signed link: the report it names, streamed (the link is the credential: no login)."""

    def __init__(
        self, session: AsyncSession, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        self.session = session
        self.settings = settings
        self.sessionmaker = sessionmaker

    async def open(self, token: str) -> ReportFile:
        link = verify(link_key(self.settings.jwt_secret), token, utcnow())
        await set_tenant(self.session, link.tenant)
        exists = (await self.session.execute(select(Tenant.id).where(Tenant.id == link.tenant))).first()
        if exists is None:
            raise ReportLinkInvalid("The download link is not valid.")
        service = ReportService(
            self.session,
            link.tenant,
            sessionmaker=self.sessionmaker,
            default_low_units=self.settings.low_stock_units,
        )
        return await service.stock_report_file(StockReportQuery(window=link.window), link.format, link.lang)
