"""The fan-out: each due connection gets one sync job whose id names its time slot.

A slot is ``floor((now + offset) / interval)`` where the offset is derived from the connection id, so
connections spread over the interval instead of all firing on the same minute. The job id
``sync:<connection>:<slot>`` makes a second tick (or a second worker) enqueue nothing twice, and
``last_scheduled_slot`` (written through an audited SECURITY DEFINER function) stops a slot from being
enqueued again after arq has forgotten the job.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.engine import session_scope
from app.domain.billing.services import MIN_SYNC_INTERVAL_MINUTES, effective_plan, schedulable

BATCH = 200


def slot_for(connection_id: uuid.UUID, interval_s: int, now: float) -> int:
    offset = connection_id.int % interval_s
    return int((now + offset) // interval_s)


async def fan_out(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: Any,
    settings: Settings,
    now: float | None = None,
    *,
    batch_size: int = BATCH,
) -> int:
    now = time.time() if now is None else now
    async with session_scope(sessionmaker) as s:
        rows = (
            await s.execute(
                text(
                    "SELECT id, tenant_id, plan, last_scheduled_slot, read_only, rank_in_tenant "
                    "FROM st_schedulable_connections()"
                )
            )
        ).all()
    due: list[tuple[uuid.UUID, uuid.UUID, int, int]] = []
    for conn_id, tenant_id, plan, last_slot, read_only, rank in rows:
        # Billing: a read-only organization's syncs pause; connections past its plan's limit are not synced.
        if not schedulable(plan, read_only, rank, billing_enabled=settings.billing_enabled):
            continue
        minutes = max(
            MIN_SYNC_INTERVAL_MINUTES,
            effective_plan(plan, billing_enabled=settings.billing_enabled).sync_interval_minutes,
        )
        interval = minutes * 60
        slot = slot_for(conn_id, interval, now)
        if slot > last_slot:
            # Late in its slot (first run, or after an outage): also claim the next boundary, so two syncs
            # never land minutes apart; gaps stay between half and one and a half intervals.
            remaining = interval - (now + conn_id.int % interval) % interval
            due.append((conn_id, tenant_id, slot, slot + 1 if remaining < interval / 2 else slot))
    enqueued = 0
    for start in range(0, len(due), batch_size):
        batch = due[start : start + batch_size]
        # Concurrent enqueues overlap Redis round trips; the job id still makes each one idempotent.
        jobs = await asyncio.gather(
            *(
                queue.enqueue_job(
                    "sync.connection",
                    tenant_id=str(tenant_id),
                    connection_id=str(conn_id),
                    trigger="scheduled",
                    _job_id=f"sync:{conn_id}:{slot}",
                )
                for conn_id, tenant_id, slot, _ in batch
            )
        )
        enqueued += sum(job is not None for job in jobs)
        async with session_scope(sessionmaker) as s:
            await s.execute(
                text("SELECT st_mark_scheduled(:ids, :slots)"),
                {"ids": [c for c, _, _, _ in batch], "slots": [claimed for _, _, _, claimed in batch]},
            )
    return enqueued
