"""The fan-out's SQL over the channels' tables (app/domain/events/repositories.py) stays inside its organization:
another organization's repositories find no endpoint or chat to send to and reschedule none of its held
notifications — through the repository's own filter and, built with the wrong id, through row-level security."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from app.db.models.notifications import Notification, NotificationChannel, WebhookDelivery, WebhookEndpoint
from app.domain.events.repositories import (
    EventRepository,
    FanoutChannelRepository,
    FanoutDeliveryRepository,
    FanoutEndpointRepository,
    FanoutNotificationRepository,
)
from app.lib.clock import utcnow
from app.lib.ids import uuid7
from tests.fakes import tenant_session
from tests.helpers import register


async def test_the_fanout_reaches_only_its_own_organization(client: Any, settings: Any) -> None:
    a = uuid.UUID((await register(client, "A"))["tenant"]["id"])
    b = uuid.UUID((await register(client, "B"))["tenant"]["id"])
    now = utcnow()
    event_id, later = uuid7(), now + timedelta(hours=3)
    async with tenant_session(settings, a) as s:
        endpoint = FanoutEndpointRepository(s, a).add(
            WebhookEndpoint(id=uuid7(), url="https://hooks.example.com/a", secret_encrypted=b"x", event_types=[])
        )
        channels = FanoutChannelRepository(s, a)
        active = channels.add(NotificationChannel(id=uuid7(), kind="telegram", chat_id=1001, active=True))
        inactive = channels.add(NotificationChannel(id=uuid7(), kind="telegram", chat_id=1002, active=False))
        await s.flush()
        assert await EventRepository(s, a).insert_once(event_id, "stock.low", {}, now)
        deliveries = FanoutDeliveryRepository(s, a)
        assert len(await deliveries.create(event_id, "stock.low", [endpoint.id], now)) == 1
        assert await deliveries.create(event_id, "stock.low", [endpoint.id], now) == []  # one per (endpoint, event)
        assert await FanoutNotificationRepository(s, a).create(event_id, [active.id], "held", later) == [active.id]

    async with tenant_session(settings, b) as s:
        for tenant in (b, a):  # B's own filter; then A's id inside B's transaction, where RLS hides A's rows
            assert await FanoutEndpointRepository(s, tenant).subscribed("stock.low", None) == []
            assert await FanoutEndpointRepository(s, tenant).subscribed("stock.low", endpoint.id) == []
            assert await FanoutChannelRepository(s, tenant).active_ids() == []
            assert await FanoutChannelRepository(s, tenant).inactive_ids() == []
            assert await FanoutNotificationRepository(s, tenant).reschedule_held(None, now) == 0

    async with tenant_session(settings, a) as s:
        assert await FanoutEndpointRepository(s, a).subscribed("stock.low", None) == [endpoint.id]
        assert await FanoutEndpointRepository(s, a).subscribed("sync.failed", endpoint.id) == [endpoint.id]
        assert await FanoutChannelRepository(s, a).active_ids() == [active.id]
        assert await FanoutChannelRepository(s, a).inactive_ids() == [inactive.id]
        held = select(Notification.held_until).where(Notification.event_id == event_id)
        assert (await s.execute(held)).scalar_one() == later  # B's reschedule left it alone
        assert (
            await s.execute(select(WebhookDelivery.tenant_id).where(WebhookDelivery.event_id == event_id))
        ).scalars().all() == [a]
        assert await FanoutNotificationRepository(s, a).reschedule_held(None, now) == 1
        assert (await s.execute(held)).scalar_one() == now
