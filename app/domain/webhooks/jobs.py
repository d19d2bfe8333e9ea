"""arq jobs of the webhooks area: one attempt of one delivery, and the per-minute sweep of due attempts."""

from __future__ import annotations

import uuid

import structlog

from app.db.engine import session_scope
from app.domain.jobcontext import JobContext
from app.domain.webhooks.dispatch import DELIVER_JOB, Deliverer, attempt_job_id
from app.domain.webhooks.repositories import due_deliveries
from app.lib.clock import utcnow

log = structlog.get_logger(__name__)
SWEEP_BATCH = 5000


async def deliver_webhook(ctx: JobContext, *, tenant_id: str, delivery_id: str) -> str:
    """Send the due attempt of one delivery (a job for an attempt that is not due does nothing)."""
    return await Deliverer(ctx).deliver(uuid.UUID(tenant_id), uuid.UUID(delivery_id))


async def deliver_event_webhooks(ctx: JobContext, *, tenant_id: str, event_id: str) -> dict[str, int]:
    """Send a new event to every subscribed endpoint at once (their first attempts)."""
    return await Deliverer(ctx).deliver_event(uuid.UUID(tenant_id), uuid.UUID(event_id))


async def webhook_retry_sweep(ctx: JobContext) -> int:
    """Cron, every minute: enqueue every due attempt; the job id names the attempt, so a sweep that
    overlaps a deferred retry (or another worker's sweep) enqueues nothing twice."""
    async with session_scope(ctx["sessionmaker"]) as s:
        due = await due_deliveries(s, utcnow(), SWEEP_BATCH)
    enqueued = 0
    for tenant_id, delivery_id, attempts, due_at in due:
        job = await ctx["redis"].enqueue_job(
            DELIVER_JOB,
            tenant_id=str(tenant_id),
            delivery_id=str(delivery_id),
            _job_id=attempt_job_id(delivery_id, attempts + 1, due_at),
        )
        enqueued += job is not None
    if enqueued:
        log.info("webhooks.sweep", enqueued=enqueued, due=len(due))
    return enqueued
