"""SQL of the events area: the event log, the suppression log, and the fan-out's reads and writes over the
channels' tables — who receives an event (subscribed webhook endpoints, linked Telegram chats, the quiet
hours that hold notifications) and the rows it creates for them (a delivery per endpoint, a notification per
chat). What happens to those rows next (claiming, sending, retrying) is the channels' SQL (webhooks/,
telegram/)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import any_, func, literal, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Tenant
from app.db.models.notifications import (
    AlertRule,
    Event,
    Notification,
    NotificationChannel,
    Suppression,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.db.repository import TenantRepository
from app.domain.events.quiet import QuietHours
from app.lib.ids import uuid7


class EventRepository(TenantRepository[Event]):
    model = Event

    async def insert_once(
        self, event_id: uuid.UUID, event_type: str, data: dict[str, Any], created_at: datetime
    ) -> bool:
        """Insert the event unless its id (derived from its key) exists; True when this call inserted it."""
        stmt = (
            insert(Event)
            .values(id=event_id, tenant_id=self.tenant_id, type=event_type, data=data, created_at=created_at)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(Event.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def insert_many(
        self, rows: list[tuple[uuid.UUID, str, dict[str, Any]]], created_at: datetime
    ) -> set[uuid.UUID]:
        """``insert_once`` for a batch in one statement: rows are (id, type, data); returns the ids inserted."""
        if not rows:
            return set()
        values = [
            {"id": event_id, "tenant_id": self.tenant_id, "type": event_type, "data": data, "created_at": created_at}
            for event_id, event_type, data in rows
        ]
        inserted: set[uuid.UUID] = set()
        for start in range(0, len(values), 2000):  # PostgreSQL takes at most 65 535 parameters per statement
            stmt = insert(Event).values(values[start : start + 2000]).on_conflict_do_nothing(index_elements=["id"])
            inserted |= set((await self.session.execute(stmt.returning(Event.id))).scalars().all())
        return inserted


class SuppressionRepository(TenantRepository[Suppression]):
    model = Suppression

    def log(
        self,
        reason: str,
        detail: str,
        *,
        event_id: uuid.UUID | None = None,
        event_type: str | None = None,
        channel_id: uuid.UUID | None = None,
        endpoint_id: uuid.UUID | None = None,
    ) -> None:
        self.add(
            Suppression(
                id=uuid7(),
                reason=reason,
                detail=detail,
                event_id=event_id,
                event_type=event_type,
                channel_id=channel_id,
                endpoint_id=endpoint_id,
            )
        )

    async def page(self, after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Suppression]:
        stmt = (
            select(Suppression)
            .where(Suppression.tenant_id == self.tenant_id)
            .order_by(Suppression.created_at.desc(), Suppression.id.desc())
            .limit(limit)
        )
        if after is not None:
            stmt = stmt.where(tuple_(Suppression.created_at, Suppression.id) < tuple_(*after))
        return list((await self.session.execute(stmt)).scalars().all())


class FanoutEndpointRepository(TenantRepository[WebhookEndpoint]):
    """The webhook endpoints an event goes to."""

    model = WebhookEndpoint

    async def subscribed(self, event_type: str, only: uuid.UUID | None) -> list[uuid.UUID]:
        """Enabled endpoints that take this type (an empty list of types means all of them)."""
        stmt = self.select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))
        if only is not None:
            stmt = stmt.where(WebhookEndpoint.id == only)
        else:
            stmt = stmt.where(
                or_(
                    func.cardinality(WebhookEndpoint.event_types) == 0,
                    literal(event_type) == any_(WebhookEndpoint.event_types),
                )
            )
        return list((await self.session.execute(stmt)).scalars().all())


class FanoutDeliveryRepository(TenantRepository[WebhookDelivery]):
    """The webhook deliveries the fan-out creates (webhooks/ claims, sends and retries them)."""

    model = WebhookDelivery

    async def create(
        self, event_id: uuid.UUID, event_type: str, endpoint_ids: list[uuid.UUID], now: datetime
    ) -> list[uuid.UUID]:
        """One pending delivery per endpoint, due now; an existing (endpoint, event) pair is left alone."""
        created = await self.create_many([(endpoint_id, event_id, event_type) for endpoint_id in endpoint_ids], now)
        return [delivery_id for _, delivery_id in created]

    async def create_many(
        self, rows: list[tuple[uuid.UUID, uuid.UUID, str]], now: datetime
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """``create`` for a batch of events in one statement: rows are (endpoint, event, type); returns the
        (event, delivery) pairs created."""
        if not rows:
            return []
        values = [
            {
                "id": uuid7(),
                "tenant_id": self.tenant_id,
                "endpoint_id": endpoint_id,
                "event_id": event_id,
                "event_type": event_type,
                "status": "pending",
                "next_attempt_at": now,
            }
            for endpoint_id, event_id, event_type in sorted(rows)
        ]
        created: list[tuple[uuid.UUID, uuid.UUID]] = []
        for start in range(0, len(values), 2000):  # PostgreSQL takes at most 65 535 parameters per statement
            stmt = insert(WebhookDelivery).values(values[start : start + 2000])
            stmt = stmt.on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
            result = await self.session.execute(stmt.returning(WebhookDelivery.event_id, WebhookDelivery.id))
            created += [(r[0], r[1]) for r in result.all()]
        return created


class FanoutChannelRepository(TenantRepository[NotificationChannel]):
    """The Telegram chats an event goes to (and the deactivated ones, for the suppression log)."""

    model = NotificationChannel

    async def active_ids(self) -> list[uuid.UUID]:
        stmt = self.select(NotificationChannel.id).where(NotificationChannel.active.is_(True))
        return list((await self.session.execute(stmt.order_by(NotificationChannel.id))).scalars().all())

    async def inactive_ids(self) -> list[uuid.UUID]:
        stmt = self.select(NotificationChannel.id).where(NotificationChannel.active.is_(False))
        return list((await self.session.execute(stmt)).scalars().all())


class FanoutNotificationRepository(TenantRepository[Notification]):
    """The Telegram notifications the fan-out creates, pending or held for quiet hours (telegram/ sends them)."""

    model = Notification

    async def create(
        self, event_id: uuid.UUID, channel_ids: list[uuid.UUID], status: str, held_until: datetime | None
    ) -> list[uuid.UUID]:
        """One notification per channel; returns the channels that got a new one."""
        created = await self.create_many([event_id], channel_ids, status, held_until)
        return [channel_id for _, channel_id in created]

    async def create_many(
        self, event_ids: list[uuid.UUID], channel_ids: list[uuid.UUID], status: str, held_until: datetime | None
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """``create`` for a batch of events in one statement; returns the (event, channel) pairs created."""
        if not event_ids or not channel_ids:
            return []
        rows = [
            {
                "id": uuid7(),
                "tenant_id": self.tenant_id,
                "channel_id": channel_id,
                "event_id": event_id,
                "status": status,
                "held_until": held_until,
            }
            for channel_id in sorted(channel_ids)
            for event_id in event_ids
        ]
        created: list[tuple[uuid.UUID, uuid.UUID]] = []
        for start in range(0, len(rows), 2000):  # PostgreSQL takes at most 65 535 parameters per statement
            stmt = insert(Notification).values(rows[start : start + 2000])
            stmt = stmt.on_conflict_do_nothing(index_elements=["channel_id", "event_id"])
            result = await self.session.execute(stmt.returning(Notification.event_id, Notification.channel_id))
            created += [(r[0], r[1]) for r in result.all()]
        return created

    async def reschedule_held(self, until: datetime | None, now: datetime) -> int:
        """Quiet hours changed: held notifications now end at ``until`` (None: at once, in one digest)."""
        return await self.update_where(
            {"held_until": until or now}, Notification.status == "held", Notification.held_until > (until or now)
        )


async def quiet_hours_for(session: AsyncSession, tenant_id: uuid.UUID) -> QuietHours | None:
    """The tenant's quiet hours (on its default alert rule) in its time zone, or None when off."""
    row = (
        await session.execute(
            select(AlertRule.quiet_hours_start, AlertRule.quiet_hours_end, Tenant.timezone)
            .join(Tenant, Tenant.id == AlertRule.tenant_id)
            .where(AlertRule.tenant_id == tenant_id, AlertRule.product_id.is_(None))
        )
    ).first()
    if row is None or row[0] is None or row[1] is None:
        return None
    return QuietHours(start=row[0], end=row[1], timezone=row[2])


async def expiring_tokens(session: AsyncSession, until: datetime) -> list[Any]:
    """Every tenant's Wildberries connections whose token expires between now and ``until`` (system function)."""
    rows = await session.execute(
        text("SELECT tenant_id, id, name, marketplace, token_expires_at FROM st_expiring_tokens(:until)"),
        {"until": until},
    )
    return list(rows.all())
