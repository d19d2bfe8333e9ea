"""Every SQL statement of the Telegram area: channels, link codes, notifications, stored updates.

Two lookups happen before the tenant is known (a `/start <code>` and a command from a chat): they go
through audited SECURITY DEFINER functions, never around row-level security.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models.notifications import (
    Event,
    Notification,
    NotificationChannel,
    TelegramLinkCode,
    TelegramUpdate,
)
from app.db.repository import TenantRepository
from app.lib.ids import uuid7


class ChannelRepository(TenantRepository[NotificationChannel]):
    model = NotificationChannel

    async def all(self) -> list[NotificationChannel]:
        stmt = self.select().order_by(NotificationChannel.created_at, NotificationChannel.id)
        return list((await self.session.execute(stmt)).scalars().all())

    async def active(self) -> list[NotificationChannel]:
        stmt = self.select().where(NotificationChannel.active.is_(True)).order_by(NotificationChannel.id)
        return list((await self.session.execute(stmt)).scalars().all())

    async def link(self, chat_id: int, title: str | None, user_id: uuid.UUID | None, now: datetime) -> uuid.UUID:
        """Link (or re-activate) a chat for this tenant; returns the channel id."""
        stmt = (
            insert(NotificationChannel)
            .values(
                id=uuid7(),
                tenant_id=self.tenant_id,
                kind="telegram",
                chat_id=chat_id,
                chat_title=title,
                active=True,
                linked_by_user_id=user_id,
            )
            .on_conflict_do_update(
                index_elements=["tenant_id", "kind", "chat_id"],
                set_={
                    "active": True,
                    "deactivated_reason": None,
                    "chat_title": title,
                    "linked_by_user_id": user_id,
                    "updated_at": now,
                },
            )
            .returning(NotificationChannel.id)
        )
        return (await self.session.execute(stmt)).scalar_one()

    async def deactivate(self, channel_id: uuid.UUID, reason: str) -> None:
        await self.update_where(
            {"active": False, "deactivated_reason": reason[:300]}, NotificationChannel.id == channel_id
        )

    async def migrate(self, channel_id: uuid.UUID, new_chat_id: int) -> None:
        """The group became a supergroup: keep the channel, change its chat id (merging a duplicate)."""
        await self.delete_where(NotificationChannel.chat_id == new_chat_id, NotificationChannel.id != channel_id)
        await self.update_where({"chat_id": new_chat_id}, NotificationChannel.id == channel_id)


class LinkCodeRepository(TenantRepository[TelegramLinkCode]):
    model = TelegramLinkCode


class NotificationRepository(TenantRepository[Notification]):
    model = Notification

    async def take_due(self, channel_id: uuid.UUID, now: datetime, limit: int) -> list[tuple[Notification, Event]]:
        """Pending notifications and held ones whose quiet hours are over, locked for this sender."""
        stmt = (
            select(Notification, Event)
            .join(Event, Event.id == Notification.event_id)
            .where(
                Notification.tenant_id == self.tenant_id,
                Notification.channel_id == channel_id,
                or_(
                    Notification.status == "pending",
                    and_(Notification.status == "held", Notification.held_until <= now),
                ),
            )
            .order_by(Event.created_at, Notification.id)
            .limit(limit)
            .with_for_update(of=Notification, skip_locked=True)
        )
        return [(n, e) for n, e in (await self.session.execute(stmt)).all()]

    async def mark(self, ids: list[uuid.UUID], status: str, now: datetime, *, in_digest: bool = False) -> None:
        if ids:
            await self.update_where(
                {"status": status, "sent_at": now, "in_digest": in_digest}, Notification.id.in_(ids)
            )

    async def drop_for_channel(self, channel_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
        """Drop what a deactivated channel still had queued; returns (event id, type) for the log."""
        stmt = (
            update(Notification)
            .where(
                Notification.tenant_id == self.tenant_id,
                Notification.channel_id == channel_id,
                Notification.status.in_(["pending", "held"]),
            )
            .values(status="dropped")
            .returning(Notification.event_id)
        )
        event_ids = list((await self.session.execute(stmt)).scalars().all())
        if not event_ids:
            return []
        types = await self.session.execute(select(Event.id, Event.type).where(Event.id.in_(event_ids)))
        return [(r[0], r[1]) for r in types.all()]


class TelegramUpdateRepository:
    """Stored updates: a system table keyed by Telegram's ``update_id`` (handled once, whatever arrives)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def store(self, update_id: int, chat_id: int | None, payload: dict[str, Any]) -> bool:
        stmt = (
            insert(TelegramUpdate)
            .values(update_id=update_id, chat_id=chat_id, payload=payload)
            .on_conflict_do_nothing(index_elements=["update_id"])
            .returning(TelegramUpdate.update_id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def get(self, update_id: int) -> TelegramUpdate | None:
        return await self.session.get(TelegramUpdate, update_id)

    async def claim(self, update_id: int, now: datetime) -> dict[str, Any] | None:
        stmt = (
            update(TelegramUpdate)
            .where(TelegramUpdate.update_id == update_id, TelegramUpdate.processed_at.is_(None))
            .values(processed_at=now)
            .returning(TelegramUpdate.payload)
        )
        row = (await self.session.execute(stmt)).first()
        return row[0] if row else None

    async def set_reply(
        self, update_id: int, reply: dict[str, Any] | None, payload: dict[str, Any] | None = None
    ) -> None:
        values: dict[str, Any] = {"reply": reply}
        if payload is not None:
            values["payload"] = payload
        await self.session.execute(update(TelegramUpdate).where(TelegramUpdate.update_id == update_id).values(**values))

    async def purge(self, before: datetime) -> int:
        """Forget handled updates (they hold people's messages) once Telegram can no longer resend them."""
        result = await self.session.execute(
            delete(TelegramUpdate).where(TelegramUpdate.received_at < before, TelegramUpdate.processed_at.is_not(None))
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def mark_replied(self, update_id: int, now: datetime) -> None:
        await self.session.execute(
            update(TelegramUpdate).where(TelegramUpdate.update_id == update_id).values(replied_at=now)
        )


async def claim_link_code(session: AsyncSession, code_hash: str) -> tuple[uuid.UUID, uuid.UUID | None] | None:
    """Use a one-time link code (any tenant's): (tenant, the user who created it), once, before it expires."""
    row = (
        await session.execute(text("SELECT tenant_id, created_by FROM st_telegram_claim_link(:h)"), {"h": code_hash})
    ).first()
    return (row[0], row[1]) if row else None


async def chat_links(session: AsyncSession, chat_id: int) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
    """(tenant, channel, organization name) of every active link of a chat, most recent first."""
    rows = await session.execute(
        text("SELECT tenant_id, channel_id, tenant_name FROM st_telegram_chat_links(:c)"), {"c": chat_id}
    )
    return [(r[0], r[1], r[2]) for r in rows.all()]


async def due_channels(
    session: AsyncSession, pending_before: datetime, now: datetime
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(tenant, channel) with notifications to send: stale pending ones, or held ones whose quiet hours ended."""
    rows = await session.execute(
        text("SELECT tenant_id, channel_id FROM st_due_notifications(:before, :now)"),
        {"before": pending_before, "now": now},
    )
    return [(r[0], r[1]) for r in rows.all()]
