"""Recording events and fanning them out: a signed delivery per subscribed endpoint, a Telegram notification
per linked chat (held through quiet hours), and a log line for whatever was not sent and why.

Two entry points:

* ``record_event`` — synchronous, for other areas' transactions (the sync engine): it writes an outbox job
  in the caller's transaction. The job (``events.publish``) inserts the event under its stable id
  (``uuid5`` of the key, ``ON CONFLICT DO NOTHING``) and fans it out, so recording a key twice — a sync
  job that runs again — publishes once.
* ``publish_event`` — async, for our own jobs that already hold a session: insert and fan out right there.

This module is the area's one door (docs/architecture.md): it also re-exports what the delivery channels
(webhooks, Telegram) and the alerts use — the event catalogue, the pipeline's instruments, quiet hours, the
suppression log and the held notifications. It imports no other area, so every other area may import it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.outbox import add_job
from app.domain.events.metrics import AlertInstruments as AlertInstruments
from app.domain.events.metrics import alert_instruments as alert_instruments
from app.domain.events.quiet import QuietHours as QuietHours
from app.domain.events.quiet import parse_hhmm as parse_hhmm
from app.domain.events.repositories import (
    EventRepository,
    FanoutChannelRepository,
    FanoutDeliveryRepository,
    FanoutEndpointRepository,
)
from app.domain.events.repositories import FanoutNotificationRepository as FanoutNotificationRepository
from app.domain.events.repositories import SuppressionRepository as SuppressionRepository
from app.domain.events.repositories import quiet_hours_for as quiet_hours_for
from app.domain.events.types import BILLING_PAYMENT_FAILED as BILLING_PAYMENT_FAILED
from app.domain.events.types import BILLING_PLAN_CHANGED as BILLING_PLAN_CHANGED
from app.domain.events.types import CONNECTION_INVALID as CONNECTION_INVALID
from app.domain.events.types import CONNECTION_TOKEN_EXPIRING as CONNECTION_TOKEN_EXPIRING
from app.domain.events.types import ENDPOINT_DISABLED as ENDPOINT_DISABLED
from app.domain.events.types import ENDPOINT_TEST as ENDPOINT_TEST
from app.domain.events.types import EVENT_TYPES as EVENT_TYPES
from app.domain.events.types import HUMAN_TYPES as HUMAN_TYPES
from app.domain.events.types import REPORT_READY as REPORT_READY
from app.domain.events.types import SHEET_LINK_INVALID as SHEET_LINK_INVALID
from app.domain.events.types import STOCK_DIGEST as STOCK_DIGEST
from app.domain.events.types import STOCK_LOW as STOCK_LOW
from app.domain.events.types import STOCK_OUT as STOCK_OUT
from app.domain.events.types import STOCK_RESTORED as STOCK_RESTORED
from app.domain.events.types import SYNC_FAILED as SYNC_FAILED
from app.domain.events.types import SYNC_SUCCEEDED as SYNC_SUCCEEDED
from app.lib.clock import utcnow
from app.lib.ids import uuid7

EVENT_NAMESPACE = uuid.UUID("5b8f8d52-7c1a-4f7e-9a55-0e2c4d9b7a31")
PUBLISH_JOB = "events.publish"
DELIVER_JOB = "webhooks.deliver"
DELIVER_EVENT_JOB = "webhooks.deliver_event"
SEND_JOB = "telegram.send"
_SCHEDULED_SENDS = "telegram_sends_scheduled"


def event_id_for(key: str) -> uuid.UUID:
    """The stable id of an event: the same key always names the same event."""
    return uuid.uuid5(EVENT_NAMESPACE, key)


def plain(data: Any) -> dict[str, Any]:
    """JSON-only values (UUIDs, datetimes, enums become strings) so the payload stores and signs as sent."""
    out = msgspec.json.decode(msgspec.json.encode(data))
    if not isinstance(out, dict):
        raise TypeError("event data must be a mapping")
    return out


def record_event(
    session: AsyncSession, tenant_id: uuid.UUID, event_type: str, data: dict[str, Any], *, key: str
) -> None:
    """Record an event in the caller's transaction (published after commit, once per ``key``)."""
    event_id = event_id_for(key)
    add_job(
        session,
        PUBLISH_JOB,
        # Unique per call (the outbox's job id is unique); the event id is what makes a repeat a no-op.
        f"event:{event_id}:{uuid7().hex}",
        tenant_id=tenant_id,
        event_id=str(event_id),
        event_type=event_type,
        data=plain(data),
        occurred_at=utcnow().isoformat(),
    )


@dataclass(frozen=True, slots=True)
class Published:
    id: uuid.UUID
    type: str
    created_at: datetime
    deliveries: list[uuid.UUID]
    notified_channels: list[uuid.UUID]


class FanoutLookups:
    """Who receives a tenant's events — subscribed endpoints per type, active and deactivated chats, quiet
    hours — read once and reused for every event published with it. Alert evaluation publishes hundreds of
    events in one transaction (a new seller's first sync); one instance per such batch turns four queries
    per event into four per batch. Without one, ``publish_event`` reads them afresh."""

    _UNSET: Any = object()

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session = session
        self.tenant_id = tenant_id
        self._endpoints: dict[tuple[str, uuid.UUID | None], list[uuid.UUID]] = {}
        self._channels: tuple[list[uuid.UUID], list[uuid.UUID]] | None = None
        self._quiet: Any = self._UNSET

    async def endpoints(self, event_type: str, only: uuid.UUID | None) -> list[uuid.UUID]:
        key = (event_type, only)
        if key not in self._endpoints:
            self._endpoints[key] = await FanoutEndpointRepository(self.session, self.tenant_id).subscribed(
                event_type, only
            )
        return self._endpoints[key]

    async def channels(self) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
        """(active chat channel ids, deactivated ones)."""
        if self._channels is None:
            repo = FanoutChannelRepository(self.session, self.tenant_id)
            self._channels = (await repo.active_ids(), await repo.inactive_ids())
        return self._channels

    async def quiet(self) -> Any:
        if self._quiet is self._UNSET:
            self._quiet = await quiet_hours_for(self.session, self.tenant_id)
        return self._quiet


async def publish_event(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    event_type: str,
    data: dict[str, Any],
    *,
    key: str | None = None,
    event_id: uuid.UUID | None = None,
    occurred_at: datetime | None = None,
    only_endpoint: uuid.UUID | None = None,
    lookups: FanoutLookups | None = None,
) -> Published | None:
    """Insert the event once and fan it out in this transaction; None when it was published before.

    ``only_endpoint`` sends to that endpoint alone (the test event) and notifies nobody. ``lookups`` shares
    the recipients' lookups across a batch of events in one transaction.
    """
    lookups = lookups or FanoutLookups(session, tenant_id)
    if event_id is None:
        if key is None:
            raise ValueError("an event needs a key or an id")
        event_id = event_id_for(key)
    now = utcnow()
    created_at = occurred_at or now
    if not await EventRepository(session, tenant_id).insert_once(event_id, event_type, plain(data), created_at):
        return None
    endpoints = await lookups.endpoints(event_type, only_endpoint)
    deliveries = await FanoutDeliveryRepository(session, tenant_id).create(event_id, event_type, endpoints, now)
    if deliveries:
        # One job sends the event to every endpoint at once (first attempts); retries go per delivery.
        add_job(session, DELIVER_EVENT_JOB, f"whe:{event_id}", tenant_id=tenant_id, event_id=str(event_id))
    notified: list[uuid.UUID] = []
    if only_endpoint is None and event_type in HUMAN_TYPES:
        notified = await _notify(session, tenant_id, event_id, event_type, now, lookups)
    return Published(event_id, event_type, created_at, deliveries, notified)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """One event of a batch for ``publish_events``: its type, data and the key that names it once."""

    type: str
    data: dict[str, Any]
    key: str


async def publish_events(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    events: list[NewEvent],
    *,
    occurred_at: datetime | None = None,
    lookups: FanoutLookups | None = None,
) -> list[Published]:
    """``publish_event`` for a batch, in a few statements whatever its size: the events in one insert, their
    deliveries in one, their notifications in one (plus the outbox rows). Events published before (same
    key) are skipped, as one at a time."""
    lookups = lookups or FanoutLookups(session, tenant_id)
    now = utcnow()
    created_at = occurred_at or now
    by_id: dict[uuid.UUID, NewEvent] = {}
    for e in events:
        by_id.setdefault(event_id_for(e.key), e)
    inserted = await EventRepository(session, tenant_id).insert_many(
        [(event_id, e.type, plain(e.data)) for event_id, e in by_id.items()], created_at
    )
    new = [(event_id, e) for event_id, e in by_id.items() if event_id in inserted]
    pairs = [(endpoint, event_id, e.type) for event_id, e in new for endpoint in await lookups.endpoints(e.type, None)]
    deliveries: dict[uuid.UUID, list[uuid.UUID]] = {}
    for event_id, delivery_id in await FanoutDeliveryRepository(session, tenant_id).create_many(pairs, now):
        deliveries.setdefault(event_id, []).append(delivery_id)
    for event_id, _ in new:
        if deliveries.get(event_id):
            add_job(session, DELIVER_EVENT_JOB, f"whe:{event_id}", tenant_id=tenant_id, event_id=str(event_id))
    human = [(event_id, e.type) for event_id, e in new if e.type in HUMAN_TYPES]
    notified = await _notify_many(session, tenant_id, human, now, lookups) if human else {}
    return [
        Published(event_id, e.type, created_at, deliveries.get(event_id, []), notified.get(event_id, []))
        for event_id, e in new
    ]


async def _notify_many(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    events: list[tuple[uuid.UUID, str]],
    now: datetime,
    lookups: FanoutLookups,
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """``_notify`` for a batch: one insert of notifications for every (event, active chat)."""
    active, inactive_ids = await lookups.channels()
    log = SuppressionRepository(session, tenant_id)
    for event_id, event_type in events:
        for inactive in inactive_ids:
            log.log(
                "channel_inactive",
                "The Telegram chat is deactivated (the bot was blocked or removed); link it again to resume.",
                event_id=event_id,
                event_type=event_type,
                channel_id=inactive,
            )
    if not active:
        return {}
    quiet = await lookups.quiet()
    held_until = quiet.held_until(now) if quiet else None
    created = await FanoutNotificationRepository(session, tenant_id).create_many(
        [event_id for event_id, _ in events], active, "held" if held_until else "pending", held_until
    )
    notified: dict[uuid.UUID, list[uuid.UUID]] = {}
    for event_id, channel_id in created:
        notified.setdefault(event_id, []).append(channel_id)
    types = dict(events)
    if held_until is not None and quiet is not None:
        for event_id, channel_id in created:
            log.log(
                "quiet_hours",
                f"Held during quiet hours ({quiet.start:%H:%M}–{quiet.end:%H:%M} {quiet.timezone}); "
                f"sent in the digest at {held_until.isoformat()}.",
                event_id=event_id,
                event_type=types[event_id],
                channel_id=channel_id,
            )
        return notified
    scheduled: set[uuid.UUID] = session.info.setdefault(_SCHEDULED_SENDS, set())
    first_event = events[0][0]
    for channel_id in sorted({c for _, c in created}):
        # One send job per chat per transaction: it sends everything pending in one message.
        if channel_id not in scheduled:
            scheduled.add(channel_id)
            add_job(
                session,
                SEND_JOB,
                f"tg-send:{channel_id}:{first_event}",
                tenant_id=tenant_id,
                channel_id=str(channel_id),
            )
    return notified


async def _notify(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    event_type: str,
    now: datetime,
    lookups: FanoutLookups,
) -> list[uuid.UUID]:
    active, inactive_ids = await lookups.channels()
    log = SuppressionRepository(session, tenant_id)
    for inactive in inactive_ids:
        log.log(
            "channel_inactive",
            "The Telegram chat is deactivated (the bot was blocked or removed); link it again to resume.",
            event_id=event_id,
            event_type=event_type,
            channel_id=inactive,
        )
    if not active:
        return []
    quiet = await lookups.quiet()
    held_until = quiet.held_until(now) if quiet else None
    created = await FanoutNotificationRepository(session, tenant_id).create(
        event_id, active, "held" if held_until else "pending", held_until
    )
    if held_until is not None and quiet is not None:
        for channel_id in created:
            log.log(
                "quiet_hours",
                f"Held during quiet hours ({quiet.start:%H:%M}–{quiet.end:%H:%M} {quiet.timezone}); "
                f"sent in the digest at {held_until.isoformat()}.",
                event_id=event_id,
                event_type=event_type,
                channel_id=channel_id,
            )
        return created
    scheduled: set[uuid.UUID] = session.info.setdefault(_SCHEDULED_SENDS, set())
    for channel_id in created:
        # One send job per chat per transaction: it sends everything pending in one message.
        if channel_id not in scheduled:
            scheduled.add(channel_id)
            add_job(
                session, SEND_JOB, f"tg-send:{channel_id}:{event_id}", tenant_id=tenant_id, channel_id=str(channel_id)
            )
    return created
