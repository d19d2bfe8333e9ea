"""arq jobs of the Telegram area: handle a stored update, send a chat's due notifications, and the sweep."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import structlog
from arq import Retry

from app.db.engine import session_scope
from app.domain.events.services import SEND_JOB
from app.domain.jobcontext import JobContext, job_session
from app.domain.telegram.commands import CommandHandler
from app.domain.telegram.reports import send_document
from app.domain.telegram.repositories import TelegramUpdateRepository, due_channels
from app.domain.telegram.services import NotificationSender
from app.integrations.telegram.client import TelegramError, TelegramRetryAfter
from app.lib.clock import utcnow

log = structlog.get_logger(__name__)
STALE_PENDING = timedelta(seconds=60)
UPDATE_RETENTION = timedelta(days=7)  # Telegram keeps undelivered updates for 24 h


def redact_link_code(payload: dict[str, Any]) -> dict[str, Any] | None:
    """A used link code is not kept in the stored update (it was a credential, if a short-lived one)."""
    for key in ("message", "channel_post", "edited_message"):
        message = payload.get(key)
        if isinstance(message, dict) and str(message.get("text", "")).startswith("/start "):
            return {**payload, key: {**message, "text": "/start [redacted]"}}
    return None


async def handle_update(ctx: JobContext, *, update_id: int) -> str:
    """Answer one update once: the work happens with the claim, the reply is sent (and re-sent) after."""
    now = utcnow()
    async with job_session(ctx, None) as session:
        updates = TelegramUpdateRepository(session)
        payload = await updates.claim(update_id, now)
        row = await updates.get(update_id)
        if row is None:
            return "unknown"
        if payload is not None:
            reply = await CommandHandler(session, ctx["settings"]).respond(payload)
            await updates.set_reply(update_id, reply, redact_link_code(payload))
        elif row.replied_at is not None or row.reply is None:
            return "done"
        else:
            reply = row.reply  # handled before, but the reply did not go out: send it now
        chat_id = row.chat_id
    if not reply or chat_id is None:
        return "no_reply"
    client = ctx.get("telegram")
    if client is None:
        return "not_configured"
    try:
        if reply.get("method") == "sendDocument":  # /report: the XLSX, made now (and again if this is a resend)
            await send_document(ctx, client, int(chat_id), uuid.UUID(reply["tenant_id"]))
        else:
            await client.send_message(int(chat_id), reply["text"])
    except TelegramRetryAfter as exc:
        raise Retry(defer=float(exc.retry_after or 5)) from None
    except TelegramError as exc:
        if exc.transient:
            raise Retry(defer=10) from None
        log.warning("telegram.reply_refused", error=exc.description)
    async with job_session(ctx, None) as session:
        await TelegramUpdateRepository(session).mark_replied(update_id, utcnow())
    return "replied"


async def send_notifications(ctx: JobContext, *, tenant_id: str, channel_id: str) -> int:
    """Send everything due for one chat (alerts as one message; ended quiet hours as one digest)."""
    return await NotificationSender(ctx).send_due(uuid.UUID(tenant_id), uuid.UUID(channel_id))


async def notifications_sweep(ctx: JobContext) -> int:
    """Cron, every minute: chats whose quiet hours ended (digest due) or whose send job went missing."""
    now = utcnow()
    async with session_scope(ctx["sessionmaker"]) as s:
        due = await due_channels(s, now - STALE_PENDING, now)
    if await ctx["redis"].set(f"cron:telegram-updates-purge:{now:%Y-%m-%dT%H}", "1", nx=True, ex=7200):
        async with session_scope(ctx["sessionmaker"]) as s:
            await TelegramUpdateRepository(s).purge(now - UPDATE_RETENTION)
    minute = now.strftime("%Y%m%d%H%M")
    enqueued = 0
    for tenant_id, channel_id in due:
        job = await ctx["redis"].enqueue_job(
            SEND_JOB, tenant_id=str(tenant_id), channel_id=str(channel_id), _job_id=f"tg-send:{channel_id}:{minute}"
        )
        enqueued += job is not None
    return enqueued
