"""The outbox writer services call, and the relay that enqueues committed rows to arq."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.engine import session_scope
from app.db.models.outbox import OutboxMessage
from app.lib.clock import utcnow
from app.lib.ids import uuid7
from app.observability.logging import current

# The optional job kwarg carrying the id of the request (or job) that enqueued it: the worker's job wrapper
# takes it off and binds it to the job's log context, so one id follows the work from request to jobs.
REQUEST_ID_ARG = "_request_id"

log = structlog.get_logger(__name__)
PENDING_KEY = "outbox_pending"


class JobQueue(Protocol):
    """What the relay needs from arq's pool (kept narrow so db/ does not import arq)."""

    async def enqueue_job(self, function: str, *args: Any, **kwargs: Any) -> Any: ...


def add_job(
    session: AsyncSession,
    job_name: str,
    job_id: str,
    *,
    tenant_id: uuid.UUID | None = None,
    defer_until: datetime | None = None,
    **args: Any,
) -> OutboxMessage:
    """Record a job in the caller's transaction; it is enqueued only if that transaction commits."""
    if tenant_id is not None:
        args["tenant_id"] = str(tenant_id)
    request_id = current("request_id")
    if request_id and REQUEST_ID_ARG not in args:
        args[REQUEST_ID_ARG] = request_id
    msg = OutboxMessage(
        id=uuid7(), job_name=job_name, job_id=job_id, tenant_id=tenant_id, args=args, defer_until=defer_until
    )
    session.add(msg)
    session.info.setdefault(PENDING_KEY, []).append(msg.id)
    return msg


def take_pending(session: AsyncSession) -> list[uuid.UUID]:
    """The outbox ids this session wrote; call after commit and hand them to ``relay``."""
    return list(session.info.pop(PENDING_KEY, []))


async def _enqueue(queue: JobQueue, msg: OutboxMessage) -> None:
    kwargs: dict[str, Any] = {"_job_id": msg.job_id}
    if msg.defer_until is not None:
        kwargs["_defer_until"] = msg.defer_until
    # Arguments are primitives (JSON): the job reloads whatever state it needs.
    await queue.enqueue_job(msg.job_name, **msg.args, **kwargs)


async def relay(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: JobQueue,
    ids: Sequence[uuid.UUID] | None = None,
    *,
    older_than: timedelta | None = None,
    limit: int = 1000,
) -> int:
    """Enqueue outbox rows not yet enqueued (the given ids, or a sweep of old ones). Returns the count.

    A failure to reach Redis leaves the rows pending for the next sweep; arq's job id makes a second
    enqueue of the same row a no-op while the first is queued, running or its result kept.
    """
    async with sessionmaker() as session, session.begin():
        stmt = select(OutboxMessage).where(OutboxMessage.enqueued_at.is_(None))
        if ids is not None:
            if not ids:
                return 0
            stmt = stmt.where(OutboxMessage.id.in_(list(ids)))
        if older_than is not None:
            stmt = stmt.where(OutboxMessage.created_at < utcnow() - older_than)
        stmt = stmt.order_by(OutboxMessage.created_at).limit(limit).with_for_update(skip_locked=True)
        messages = (await session.execute(stmt)).scalars().all()
        done: list[uuid.UUID] = []
        for msg in messages:
            try:
                await _enqueue(queue, msg)
            except Exception as exc:  # Redis unreachable: the sweep retries
                log.warning("outbox.enqueue_failed", job_id=msg.job_id, error=type(exc).__name__)
                await session.execute(
                    update(OutboxMessage).where(OutboxMessage.id == msg.id).values(attempts=OutboxMessage.attempts + 1)
                )
                break
            done.append(msg.id)
        if done:
            await session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(done)).values(enqueued_at=utcnow()))
        return len(done)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession], queue: JobQueue | None, tenant_id: uuid.UUID | None = None
) -> AsyncIterator[AsyncSession]:
    """A transaction whose outbox rows are enqueued right after it commits (the sweep is the safety net)."""
    async with session_scope(sessionmaker, tenant_id) as session:
        yield session
    pending = take_pending(session)
    if pending and queue is not None:
        try:
            await relay(sessionmaker, queue, pending)
        except Exception as exc:  # the periodic sweep enqueues what this missed
            log.warning("outbox.relay_failed", error=type(exc).__name__)
