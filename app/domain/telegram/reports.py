"""The stock report as an XLSX document in Telegram: the `/report` answer and the daily report to linked chats.

The file is the same streamed XLSX the API serves (``ReportService.stock_report_file``), gathered into memory
for the upload (a 50 000-row report is a few MB; Telegram takes documents up to 50 MB). The daily report
reaches each linked chat through a job of its own (``telegram.report_document``, one id per chat and date),
so a chat that fails is retried alone and a chat that got it is never sent it twice by a retry.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from arq import Retry

from app.db.engine import session_scope
from app.db.outbox import add_job, unit_of_work
from app.domain.jobcontext import JobContext
from app.domain.reports.services import ReportService, StockReportQuery, collect, org_settings
from app.domain.telegram.repositories import ChannelRepository
from app.integrations.telegram.client import (
    TelegramBlocked,
    TelegramChatMigrated,
    TelegramClient,
    TelegramError,
    TelegramRetryAfter,
)
from app.lib.clock import utcnow
from app.lib.tabular import XLSX_MEDIA_TYPE

log = structlog.get_logger(__name__)
DOCUMENT_JOB = "telegram.report_document"
CAPTIONS = {
    "ru": "📊 <b>Остатки</b> на {day} — заказы за {days} дн.",
    "en": "📊 <b>Stock report</b> for {day} — orders over {days} days",
}


async def report_document(ctx: JobContext, tenant_id: uuid.UUID) -> tuple[str, bytes, str]:
    """(file name, XLSX bytes, caption) of the organization's stock report in its language and window."""
    async with session_scope(ctx["sessionmaker"], tenant_id) as s:
        org = await org_settings(s, tenant_id)
        service = ReportService(
            s, tenant_id, sessionmaker=ctx["sessionmaker"], default_low_units=ctx["settings"].low_stock_units
        )
        report = await service.stock_report_file(StockReportQuery(window=org.report_window_days), "xlsx", None)
    content = await collect(report.chunks)  # read in a snapshot of its own, after the session above closed
    day: datetime = utcnow().astimezone(ZoneInfo(org.timezone))
    label = f"{day:%d.%m.%Y}" if org.locale == "ru" else f"{day:%Y-%m-%d}"
    caption = CAPTIONS.get(org.locale, CAPTIONS["en"]).format(day=label, days=org.report_window_days)
    return report.filename, content, caption


def document_reply(tenant_id: uuid.UUID) -> dict[str, Any]:
    """What `/report` stores as its reply: the document is made when the reply is sent (and again if resent)."""
    return {"method": "sendDocument", "tenant_id": str(tenant_id)}


async def send_document(ctx: JobContext, client: TelegramClient, chat_id: int, tenant_id: uuid.UUID) -> int:
    """Make and send the report; returns the chat it went to (a migrated group's new id)."""
    name, content, caption = await report_document(ctx, tenant_id)
    try:
        await client.send_document(chat_id, name, content, caption=caption, mime_type=XLSX_MEDIA_TYPE)
    except TelegramChatMigrated as exc:
        chat_id = int(exc.migrate_to_chat_id or chat_id)
        await client.send_document(chat_id, name, content, caption=caption, mime_type=XLSX_MEDIA_TYPE)
    return chat_id


async def daily_report(ctx: JobContext, *, tenant_id: str, local_date: str) -> int:
    """Fan the daily report out: one document job per linked chat (in one transaction)."""
    tid = uuid.UUID(tenant_id)
    async with unit_of_work(ctx["sessionmaker"], ctx["redis"], tid) as s:
        channels = await ChannelRepository(s, tid).active()
        for channel in channels:
            add_job(
                s,
                DOCUMENT_JOB,
                f"tg-report:{channel.id}:{local_date}",
                tenant_id=tid,
                channel_id=str(channel.id),
                local_date=local_date,
            )
    return len(channels)


async def send_report_document(ctx: JobContext, *, tenant_id: str, channel_id: str, local_date: str) -> str:
    """The daily report to one chat: 429 waits as Telegram says, a blocked bot deactivates the chat."""
    client = ctx.get("telegram")
    if client is None:
        return "not_configured"
    tid, cid = uuid.UUID(tenant_id), uuid.UUID(channel_id)
    async with session_scope(ctx["sessionmaker"], tid) as s:
        channel = await ChannelRepository(s, tid).get(cid)
        if channel is None or not channel.active:
            return "inactive"
        chat_id = channel.chat_id
    try:
        sent_to = await send_document(ctx, client, chat_id, tid)
    except TelegramRetryAfter as exc:
        raise Retry(defer=float(exc.retry_after or 5)) from None
    except TelegramBlocked as exc:
        async with session_scope(ctx["sessionmaker"], tid) as s:
            await ChannelRepository(s, tid).deactivate(cid, f"Telegram refused: {exc.description}")
        log.warning("telegram.channel_deactivated", channel_id=channel_id)
        return "blocked"
    except TelegramError as exc:
        if exc.transient:
            raise Retry(defer=30) from None
        log.warning("telegram.report_refused", channel_id=channel_id, error=exc.description)
        return "refused"
    async with session_scope(ctx["sessionmaker"], tid) as s:
        repo = ChannelRepository(s, tid)
        if sent_to != chat_id:
            await repo.migrate(cid, sent_to)
        row = await repo.get(cid)
        if row is not None:
            row.last_sent_at = utcnow()
    log.info("telegram.daily_report_sent", channel_id=channel_id, date=date.fromisoformat(local_date).isoformat())
    return "sent"
