"""First attempts sent by the job that published the events, right after its commit.

The outbox jobs for the same work (``whe:<event>``, ``tg-send:<chat>:…``) are enqueued as well: whichever
runs first claims the deliveries (or locks the notifications) and the other finds nothing left. Sending
here saves one queue hop (a worker poll) between a sync's commit and the receiver.

It sits beside the areas, not in one: it drives both channels (webhooks, Telegram) for the jobs that publish
(``events.publish``, ``alerts.evaluate``), and those channels themselves publish through
``app.domain.events.services``, so no area's ``services`` could hold it without an import cycle. It imports
the areas only through their ``services`` (docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import structlog
from arq import Retry

from app.domain.events.services import Published
from app.domain.jobcontext import JobContext
from app.domain.telegram.services import NotificationSender
from app.domain.webhooks.services import Deliverer

log = structlog.get_logger(__name__)


async def send_now(ctx: JobContext, tenant_id: uuid.UUID, published: Sequence[Published]) -> None:
    events = [p.id for p in published if p.deliveries]
    channels = sorted({c for p in published for c in p.notified_channels})
    if not events and not channels:
        return
    deliverer = Deliverer(ctx)
    sender = NotificationSender(ctx)
    results = await asyncio.gather(
        *(deliverer.deliver_event(tenant_id, e) for e in events),
        *(sender.send_due(tenant_id, c) for c in channels),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, Retry):
            continue  # Telegram flood control: the queued send job waits it out
        if isinstance(result, BaseException):
            # The queued jobs do the same work; this was only a shortcut.
            log.warning("events.send_now_failed", error=type(result).__name__)
